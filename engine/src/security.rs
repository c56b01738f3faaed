//! Bearer tokens. On first start an admin token is created; only its SHA-256 hash is kept, the
//! token itself is written once to `<data-dir>/admin.token` (mode 0600) for the operator.

use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// File name of the admin token inside the data directory.
pub const TOKEN_FILE: &str = "admin.token";
/// File name of the token hashes inside the data directory.
const HASH_FILE: &str = "tokens.sha256";

/// Problems with tokens.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// Reading or writing token files failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The system random source failed.
    #[error("cannot generate a token: {0}")]
    Random(String),
}

/// Accepted tokens, as hashes.
#[derive(Clone)]
pub struct Tokens {
    hashes: Vec<[u8; 32]>,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SecurityError + '_ {
    move |source| SecurityError::Io { path: path.display().to_string(), source }
}

fn write_private(path: &Path, text: &str) -> Result<(), SecurityError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io(path))?;
    // `mode` applies only when the file is created: an existing one is made private too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io(path))?;
    }
    file.write_all(text.as_bytes()).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

impl Tokens {
    /// Load the token hashes of `data_dir`, creating the admin token on first start. Returns the
    /// tokens and, when one was created, the path of the file holding it.
    pub fn load_or_create(data_dir: &Path) -> Result<(Tokens, Option<PathBuf>), SecurityError> {
        let hash_path = data_dir.join(HASH_FILE);
        if hash_path.exists() {
            let text = std::fs::read_to_string(&hash_path).map_err(io(&hash_path))?;
            let hashes = text
                .lines()
                .filter_map(|line| hex::decode(line.trim()).ok())
                .filter_map(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
                .collect::<Vec<_>>();
            if !hashes.is_empty() {
                return Ok((Tokens { hashes }, None));
            }
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| SecurityError::Random(e.to_string()))?;
        let token = format!("fg_{}", hex::encode(secret));
        let token_path = data_dir.join(TOKEN_FILE);
        write_private(&token_path, &format!("{token}\n"))?;
        write_private(&hash_path, &format!("{}\n", hex::encode(hash(&token))))?;
        Ok((Tokens { hashes: vec![hash(&token)] }, Some(token_path)))
    }

    /// Whether `token` is one of ours; compares hashes in constant time.
    pub fn verify(&self, token: &str) -> bool {
        let candidate = hash(token);
        self.hashes.iter().fold(subtle::Choice::from(0), |found, h| found | h.ct_eq(&candidate)).into()
    }

    /// Whether an `Authorization` header value carries a valid bearer token.
    pub fn verify_header(&self, header: Option<&str>) -> bool {
        let Some(value) = header else { return false };
        let mut parts = value.splitn(2, ' ');
        match (parts.next(), parts.next()) {
            (Some(scheme), Some(token)) if scheme.eq_ignore_ascii_case("bearer") => self.verify(token.trim()),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_creates_a_private_token_and_keeps_only_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let (tokens, created) = Tokens::load_or_create(dir.path()).unwrap();
        let path = created.expect("a token file on first start");
        let token = std::fs::read_to_string(&path).unwrap().trim().to_string();
        assert!(tokens.verify(&token));
        assert!(!tokens.verify("fg_wrong"));
        let stored = std::fs::read_to_string(dir.path().join(HASH_FILE)).unwrap();
        assert!(!stored.contains(&token), "the hash file must not hold the token");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let (again, created) = Tokens::load_or_create(dir.path()).unwrap();
        assert!(created.is_none());
        assert!(again.verify(&token));
    }

    #[test]
    fn header_must_be_a_bearer_token() {
        let dir = tempfile::tempdir().unwrap();
        let (tokens, path) = Tokens::load_or_create(dir.path()).unwrap();
        let token = std::fs::read_to_string(path.unwrap()).unwrap().trim().to_string();
        assert!(tokens.verify_header(Some(&format!("Bearer {token}"))));
        assert!(tokens.verify_header(Some(&format!("bearer {token}"))));
        assert!(!tokens.verify_header(Some(&format!("Basic {token}"))));
        assert!(!tokens.verify_header(Some("Bearer")));
        assert!(!tokens.verify_header(None));
    }
}

//! The admin token of first start. When the store has no token, an `admin` token (role admin)
//! is created; its secret is written once to `<data-dir>/admin.token` (mode 0600) for the
//! operator, and only its hash is kept. A data directory from before tokens lived in storage has
//! `tokens.sha256` (one hash per line): those become tokens `admin`, `admin-2`, ... once, and
//! the file is renamed `tokens.sha256.imported`.

use super::store::{hash, new_secret, Security};
use super::SecurityError;
use std::io::Write;
use std::path::{Path, PathBuf};

/// File name of the admin token inside the data directory.
pub const TOKEN_FILE: &str = "admin.token";
/// File name of the token hashes of earlier versions inside the data directory.
const HASH_FILE: &str = "tokens.sha256";

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

/// Make sure `security` has a token: import `tokens.sha256` of an older data directory, or
/// create the admin token. Answers the path of the file holding a token created now.
pub fn ensure_admin_token(security: &Security, data_dir: &Path) -> Result<Option<PathBuf>, SecurityError> {
    if security.has_tokens() {
        return Ok(None);
    }
    let hash_path = data_dir.join(HASH_FILE);
    if hash_path.exists() {
        let text = std::fs::read_to_string(&hash_path).map_err(io(&hash_path))?;
        let mut hashes: Vec<[u8; 32]> = Vec::new();
        for h in text
            .lines()
            .filter_map(|line| hex::decode(line.trim()).ok())
            .filter_map(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
        {
            if !hashes.contains(&h) {
                hashes.push(h);
            }
        }
        if !hashes.is_empty() {
            // One commit: a crash part-way imports nothing, and the next start tries again.
            let named: Vec<(String, [u8; 32])> = hashes
                .iter()
                .enumerate()
                .map(|(n, h)| (if n == 0 { "admin".to_string() } else { format!("admin-{}", n + 1) }, *h))
                .collect();
            security.create_tokens_with(&named, "admin", None)?;
            let done = data_dir.join(format!("{HASH_FILE}.imported"));
            std::fs::rename(&hash_path, &done).map_err(io(&hash_path))?;
            tracing::info!(tokens = hashes.len(), "imported the tokens of tokens.sha256 as admin tokens");
            return Ok(None);
        }
    }
    let secret = new_secret()?;
    let token_path = data_dir.join(TOKEN_FILE);
    write_private(&token_path, &format!("{secret}\n"))?;
    security.create_token_with("admin", "admin", None, hash(&secret))?;
    Ok(Some(token_path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Db;
    use chrono::Utc;

    fn open(dir: &Path) -> Security {
        Security::open(Db::open(dir.join("db")).unwrap()).unwrap()
    }

    #[test]
    fn first_start_creates_a_private_admin_token_and_keeps_only_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = {
            let security = open(dir.path());
            let path = ensure_admin_token(&security, dir.path()).unwrap().expect("a token file on first start");
            let token = std::fs::read_to_string(&path).unwrap().trim().to_string();
            let who = security.authenticate(Some(&format!("Bearer {token}")), Utc::now()).unwrap();
            assert_eq!((who.subject.as_str(), who.role.as_str()), ("admin", "admin"));
            assert!(security.authenticate(Some("Bearer fg_wrong"), Utc::now()).is_err());
            assert!(security.tokens().iter().all(|t| t.hash != token), "only the hash is kept");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            }
            path
        };
        let token = std::fs::read_to_string(&path).unwrap().trim().to_string();
        let again = open(dir.path());
        assert!(ensure_admin_token(&again, dir.path()).unwrap().is_none());
        assert!(again.authenticate(Some(&format!("bearer {token}")), Utc::now()).is_ok());
        assert!(again.authenticate(Some(&format!("Basic {token}")), Utc::now()).is_err());
        assert!(again.authenticate(Some("Bearer"), Utc::now()).is_err());
        assert!(again.authenticate(None, Utc::now()).is_err());
    }

    #[test]
    fn the_hash_file_of_an_older_data_directory_is_imported_once() {
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = ("fg_one", "fg_two");
        let (h1, h2) = (hex::encode(hash(one)), hex::encode(hash(two)));
        std::fs::write(dir.path().join(HASH_FILE), format!("{h1}\n{h2}\n{h1}\nnot a hash\n")).unwrap();
        let security = open(dir.path());
        assert!(ensure_admin_token(&security, dir.path()).unwrap().is_none(), "no new token file");
        let names: Vec<String> = security.tokens().into_iter().map(|t| t.name).collect();
        assert_eq!(names, vec!["admin", "admin-2"]);
        assert_eq!(security.authenticate(Some("Bearer fg_two"), Utc::now()).unwrap().subject, "admin-2");
        assert!(!dir.path().join(HASH_FILE).exists());
        assert!(dir.path().join("tokens.sha256.imported").exists());
    }
}

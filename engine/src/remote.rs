//! `ferrogrid apply` and `ferrogrid pull`: the configuration API from the command line.

use crate::config::{self, archive};
use anyhow::Context;
use std::path::Path;
use std::time::Duration;

/// How to reach a running engine.
#[derive(Debug, Clone)]
pub struct Remote {
    /// `http://127.0.0.1:8080`.
    pub url: String,
    /// The file holding the bearer token (the data directory's `admin.token`, or another).
    pub token_file: std::path::PathBuf,
}

impl Remote {
    fn token(&self) -> anyhow::Result<String> {
        let text = std::fs::read_to_string(&self.token_file)
            .with_context(|| format!("reading the token file {}", self.token_file.display()))?;
        Ok(text.trim().to_string())
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .into()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url.trim_end_matches('/'))
    }
}

/// What the engine answered: its status and JSON body, printed for the user.
fn report(status: u16, body: &str) -> anyhow::Result<()> {
    let pretty = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| body.to_string());
    if (200..300).contains(&status) {
        println!("{pretty}");
        Ok(())
    } else {
        anyhow::bail!("the engine answered {status}:\n{pretty}")
    }
}

/// Pack the configuration `folder` (config.yml and the files it includes) and apply it on the
/// engine at `remote`; `dry_run` only checks it and shows the migration plan.
pub fn apply(folder: &Path, remote: &Remote, dry_run: bool) -> anyhow::Result<()> {
    let loaded =
        config::load(folder).map_err(|e| anyhow::anyhow!("invalid configuration {}:\n{e}", folder.display()))?;
    let files = loaded.files.into_iter().map(|(name, text)| (name, text.into_bytes())).collect();
    let packed = archive::pack_tar_gz(&files).context("packing the configuration")?;
    let path = if dry_run { "/admin/api/config?dry_run=true" } else { "/admin/api/config" };
    let mut response = Remote::agent()
        .put(remote.url(path))
        .header("Authorization", format!("Bearer {}", remote.token()?))
        .header("Content-Type", "application/gzip")
        .send(&packed[..])
        .with_context(|| format!("uploading to {}", remote.url))?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().context("reading the answer")?;
    report(status, &body)
}

/// Download the active configuration of the engine at `remote` into the folder `out` (created;
/// files in it are overwritten), or into the file `out` when it ends with `.tar.gz`.
pub fn pull(remote: &Remote, out: &Path) -> anyhow::Result<()> {
    let mut response = Remote::agent()
        .get(remote.url("/admin/api/config/active/archive"))
        .header("Authorization", format!("Bearer {}", remote.token()?))
        .call()
        .with_context(|| format!("downloading from {}", remote.url))?;
    let status = response.status().as_u16();
    let bytes = response
        .body_mut()
        .with_config()
        .limit(archive::Limits::default().max_total_bytes)
        .read_to_vec()
        .context("reading the archive")?;
    if status != 200 {
        return report(status, &String::from_utf8_lossy(&bytes));
    }
    if out.to_string_lossy().ends_with(".tar.gz") {
        std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
        println!("wrote {}", out.display());
        return Ok(());
    }
    let files = archive::unpack(&bytes, archive::Kind::TarGz, &archive::Limits::default())?;
    for (name, contents) in &files {
        let path = out.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("wrote {} file(s) into {}", files.len(), out.display());
    Ok(())
}

//! `swf-warden audit keygen` and `swf-warden audit verify` (SPEC, "Audit integrity").
//!
//! `keygen` writes an Ed25519 key pair for signing the audit log's checkpoints: `ID.key`
//! (PKCS#8 PEM, readable by its owner only) and `ID.pub` (PEM). `verify` checks audit files
//! with the proxy's own verifier (`audit::verify`), files ending in `.gz` (as logrotate
//! compresses them) decompressed as they are read (`audit::files`), prints what it found in words (or JSON),
//! and exits 0 when the log is intact, 1 when it is not, 64 when it cannot run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::audit::checkpoint::{generate, PublicKey};
use crate::audit::verify::{verify, Options};

/// `audit keygen --out DIR [--id ID]`.
pub fn keygen(out: &Path, id: &str) -> u8 {
    if !crate::tokens::valid_key_id(id) {
        eprintln!("error: key id `{id}` must be 1 to 32 of A-Z a-z 0-9 _ -");
        return EXIT_USAGE;
    }
    let (private, public) = match generate() {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    let (key, public_path) = (out.join(format!("{id}.key")), out.join(format!("{id}.pub")));
    for path in [&key, &public_path] {
        if path.exists() {
            eprintln!("error: `{}` exists: not overwritten", path.display());
            return EXIT_USAGE;
        }
    }
    if let Err(e) = std::fs::create_dir_all(out)
        .and_then(|()| write_private(&key, private.as_bytes()))
        .and_then(|()| std::fs::write(&public_path, public.as_bytes()))
    {
        eprintln!("error: {e}");
        return EXIT_FAILED;
    }
    println!(
        "wrote {} (the private key: [audit] signing_key_file, key_id = \"{id}\") and {} (the public key: audit verify --public-key {id}={})",
        key.display(),
        public_path.display(),
        public_path.display()
    );
    EXIT_OK
}

/// Creates `path` readable and writable by its owner only, with `bytes`.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// What `audit verify` is given.
pub struct VerifyArgs<'a> {
    /// `ID=FILE`.
    pub public_keys: &'a [String],
    pub checkpoint: Option<&'a Path>,
    /// Where the files given begin, when the log's first files expired.
    pub from: Option<u64>,
    pub json: bool,
    pub files: &'a [PathBuf],
}

/// `audit verify [--public-key ID=FILE …] [--checkpoint FILE] [--json] FILE …`.
pub fn run_verify(args: &VerifyArgs<'_>) -> u8 {
    let mut keys = HashMap::new();
    for given in args.public_keys {
        let Some((id, file)) = given.split_once('=') else {
            eprintln!("error: --public-key takes ID=FILE, not `{given}`");
            return EXIT_USAGE;
        };
        let key = std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|text| PublicKey::parse(&text));
        match key {
            Ok(key) => {
                keys.insert(id.to_owned(), key);
            }
            Err(e) => {
                eprintln!("error: public key `{file}`: {e}");
                return EXIT_USAGE;
            }
        }
    }
    let monitor = match args.checkpoint.map(std::fs::read) {
        None => None,
        Some(Ok(bytes)) => Some(bytes),
        Some(Err(e)) => {
            eprintln!("error: --checkpoint: {e}");
            return EXIT_USAGE;
        }
    };
    let inputs = match crate::audit::files::open(args.files) {
        Ok(inputs) => inputs,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let report = verify(
        inputs,
        &Options {
            keys,
            monitor,
            from: args.from,
        },
    );
    if args.json {
        let mut value = serde_json::to_value(&report).unwrap_or_default();
        value["intact"] = serde_json::Value::Bool(report.intact());
        println!("{value}");
    } else {
        print!("{}", report.text());
    }
    if report.intact() {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

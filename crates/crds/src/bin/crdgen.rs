//! Writes the CRD YAML of `secrets-store-crds` into a directory
//! (default: `deploy/crds` of the workspace).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/crds"))
        });
    std::fs::create_dir_all(&dir)?;
    for crd in secrets_store_crds::crd::all()? {
        let path = dir.join(secrets_store_crds::crd::file_name(&crd));
        std::fs::write(&path, secrets_store_crds::crd::to_yaml(&crd)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

//! Validation against YANG with libyang's `yanglint` (Debian's libyang2-tools): the modules are
//! the RFCs' own, kept in tests/data/yang (tests/data/README.md gives their provenance).

use std::path::Path;
use std::process::Command;

use crate::util::{root, text, tool};

/// Validates a MUD file (JSON) as configuration data of ietf-mud, ietf-access-control-list and
/// ietf-acldns:
/// (accepted, what yanglint said).
pub fn validate_mud(file: &Path) -> (bool, String) {
    let dir = root().join("tests/data/yang");
    let module = |name: &str| {
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with(&format!("{name}@")))
            .unwrap_or_else(|| panic!("{name} is missing from {}", dir.display()))
    };
    // -D: modules from -p only (not the working directory); -t config: a MUD file is
    // configuration, so state-only nodes (ACE statistics) are errors; unknown keys always are.
    // ietf-access-control-list and the types are found through -p.
    let o = Command::new(tool("yanglint"))
        .arg("-D")
        .arg("-p")
        .arg(&dir)
        .args(["-t", "config"])
        .arg(module("ietf-mud"))
        .arg(module("ietf-acldns"))
        .arg(file)
        .output()
        .unwrap();
    (o.status.success(), format!("{}{}", text(&o.stdout), text(&o.stderr)))
}

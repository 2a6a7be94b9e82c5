//! The test data's README lists every file in `tests/data` with its SHA-256: a file added without
//! its provenance, or changed after it was recorded, fails here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::util::*;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn every_test_data_file_is_listed_with_its_checksum() {
    let data = root().join("tests/data");
    let readme = std::fs::read_to_string(data.join("README.md")).unwrap();
    let listed: BTreeMap<String, String> = readme
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let file = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let sha = cells.get(5)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((file.to_string(), sha.to_string()))
        })
        .collect();
    let mut found = Vec::new();
    files(&data, &mut found);
    let mut problems = Vec::new();
    for f in &found {
        let rel = f.strip_prefix(&data).unwrap().to_string_lossy().into_owned();
        if rel == "README.md" {
            continue;
        }
        let sha = hex::encode(Sha256::digest(std::fs::read(f).unwrap()));
        match listed.get(&rel) {
            None => problems.push(format!("{rel}: not listed")),
            Some(want) if *want != sha => problems.push(format!("{rel}: SHA-256 {sha}, listed {want}")),
            Some(_) => {}
        }
    }
    for rel in listed.keys() {
        if !data.join(rel).is_file() {
            problems.push(format!("{rel}: listed but missing"));
        }
    }
    assert!(listed.len() > 100, "only {} rows read from the README", listed.len());
    assert!(problems.is_empty(), "tests/data/README.md is out of date:\n{}", problems.join("\n"));
}

use super::*;

fn payload(files: &[(&str, &str, i64)]) -> Payload {
    let mut p = Payload::new();
    for (path, contents, mode) in files {
        p.insert(path, contents.as_bytes().to_vec(), *mode)
            .expect("valid file");
    }
    p
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn path_rules() {
    let long_name = "a".repeat(256);
    let long_path = format!("{}/b", "a/".repeat(2100));
    let deep_ok = format!("{}b", "a/".repeat(MAX_DEPTH - 1));
    let too_deep = format!("{}b", "a/".repeat(MAX_DEPTH));
    let cases: &[(&str, Option<&str>)] = &[
        ("foo", None),
        ("dir/sub/file.pem", None),
        ("a..b", None),
        ("dir/..hidden", None),
        ("", Some("empty")),
        ("/etc/passwd", Some("absolute")),
        ("../escape", Some("contains a '..' element")),
        ("dir/../../escape", Some("contains a '..' element")),
        ("..data", Some("starts with '..'")),
        ("..2026_01_01", Some("starts with '..'")),
        ("./foo", Some("contains a '.' element")),
        (
            "a//b",
            Some("empty element (leading, trailing or double '/')"),
        ),
        (
            "a/",
            Some("empty element (leading, trailing or double '/')"),
        ),
        ("nul\0byte", Some("contains NUL")),
        (&long_name, Some("element longer than 255 bytes")),
        (&long_path, Some("longer than 4096 bytes")),
        // Found by the atomic_writer fuzz target: a path written but too
        // deep for the read-back.
        (&deep_ok, None),
        (&too_deep, Some("more than 64 elements")),
    ];
    for (path, want) in cases {
        let got = validate_path(path).err().map(|e| match e {
            Error::InvalidPath { reason, .. } => reason,
            other => panic!("{other}"),
        });
        assert_eq!(got, *want, "{path:?}");
    }
}

#[test]
fn payload_rejects_duplicates_conflicts_and_bad_modes() {
    let mut p = Payload::new();
    p.insert("a", vec![], 0o644).expect("ok");
    assert!(matches!(
        p.insert("a", vec![], 0o644),
        Err(Error::DuplicatePath(_))
    ));
    assert!(matches!(p.insert("a/b", vec![], 0o644), Err(Error::FileDirConflict(x)) if x == "a"));
    p.insert("d/e", vec![], 0o644).expect("ok");
    assert!(matches!(p.insert("d", vec![], 0o644), Err(Error::FileDirConflict(x)) if x == "d"));
    assert!(matches!(
        p.insert("m", vec![], 0o1777),
        Err(Error::InvalidMode { .. })
    ));
    assert!(matches!(
        p.insert("n", vec![], -1),
        Err(Error::InvalidMode { .. })
    ));
    assert_eq!(p.len(), 2);
}

#[test]
fn first_write_lays_out_data_dir_and_links() {
    let dir = tempfile::tempdir().expect("tmp");
    let w = AtomicWriter::new(dir.path());
    let out = w
        .write(&payload(&[
            ("foo", "secret", 0o600),
            ("dir/bar", "x", 0o644),
        ]))
        .expect("write");
    assert_eq!(out, Outcome::Written);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("foo")).expect("read"),
        "secret"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("dir/bar")).expect("read"),
        "x"
    );
    assert_eq!(mode_of(&dir.path().join("foo")), 0o600);
    assert_eq!(
        std::fs::read_link(dir.path().join("foo")).expect("link"),
        Path::new("..data/foo")
    );
    let data = std::fs::read_link(dir.path().join(DATA_DIR_LINK)).expect("..data");
    let name = data.to_string_lossy();
    assert!(name.starts_with("..") && name.len() > 20, "{name}");
    assert_eq!(read(dir.path(), 1 << 20).expect("read back").len(), 2);
}

#[test]
fn identical_content_is_not_rewritten() {
    let dir = tempfile::tempdir().expect("tmp");
    let w = AtomicWriter::new(dir.path());
    let p = payload(&[("foo", "v1", 0o644)]);
    w.write(&p).expect("write");
    let before = std::fs::read_link(dir.path().join(DATA_DIR_LINK)).expect("link");
    assert_eq!(w.write(&p).expect("write"), Outcome::Unchanged);
    assert_eq!(
        std::fs::read_link(dir.path().join(DATA_DIR_LINK)).expect("link"),
        before
    );
    // A mode change is a change.
    assert_eq!(
        w.write(&payload(&[("foo", "v1", 0o600)])).expect("write"),
        Outcome::Written
    );
}

#[test]
fn update_swaps_content_removes_stale_entries_and_old_dir() {
    let dir = tempfile::tempdir().expect("tmp");
    let w = AtomicWriter::new(dir.path());
    w.write(&payload(&[("old", "1", 0o644), ("keep", "1", 0o644)]))
        .expect("write");
    let old_dir = dir
        .path()
        .join(std::fs::read_link(dir.path().join(DATA_DIR_LINK)).expect("link"));
    w.write(&payload(&[("keep", "2", 0o644), ("new/file", "3", 0o644)]))
        .expect("write");
    assert!(
        !dir.path().join("old").exists()
            && std::fs::symlink_metadata(dir.path().join("old")).is_err()
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("keep")).expect("read"),
        "2"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("new/file")).expect("read"),
        "3"
    );
    assert!(!old_dir.exists(), "old data dir removed");
    let entries: Vec<String> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".."))
        .collect();
    assert_eq!(
        entries.len(),
        2,
        "only ..data and one data dir: {entries:?}"
    );
}

#[test]
fn legacy_provider_written_files_are_replaced() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("foo"), "written by provider").expect("write");
    std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    std::fs::write(dir.path().join("sub/x"), "old").expect("write");
    let w = AtomicWriter::new(dir.path());
    w.write(&payload(&[("foo", "new", 0o644), ("sub/y", "y", 0o644)]))
        .expect("write");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("foo")).expect("read"),
        "new"
    );
    assert!(!dir.path().join("sub/x").exists());
}

#[test]
fn group_ownership_adds_group_read() {
    let dir = tempfile::tempdir().expect("tmp");
    let gid = nix::unistd::getgid().as_raw();
    let w = AtomicWriter::new(dir.path()).with_ownership(Ownership { group: Some(gid) });
    w.write(&payload(&[("foo", "s", 0o600)])).expect("write");
    assert_eq!(mode_of(&dir.path().join("foo")), 0o640);
    // Same content again is still recognised as unchanged.
    assert_eq!(
        w.write(&payload(&[("foo", "s", 0o600)])).expect("write"),
        Outcome::Unchanged
    );
}

#[test]
fn utc_stamps() {
    assert_eq!(utc_stamp(0), "1970_01_01_00_00_00");
    assert_eq!(utc_stamp(1_795_424_461), "2026_11_23_09_01_01");
    assert_eq!(utc_stamp(951_782_400), "2000_02_29_00_00_00");
}

#[test]
fn read_back_follows_no_symlink_skips_specials_and_writer_entries() {
    let dir = tempfile::tempdir().expect("tmp");
    let outside = tempfile::tempdir().expect("tmp");
    std::fs::write(outside.path().join("secret"), "host secret").expect("write");
    AtomicWriter::new(dir.path())
        .write(&payload(&[("a", "1", 0o644), ("sub/b", "2", 0o644)]))
        .expect("write");
    let data = dir
        .path()
        .join(std::fs::read_link(dir.path().join(DATA_DIR_LINK)).expect("..data"));
    // Planted inside the payload: a symlink to a file and one to a directory
    // outside, and a FIFO that would block a naive reader.
    std::os::unix::fs::symlink(outside.path().join("secret"), data.join("link")).expect("ln");
    std::os::unix::fs::symlink(outside.path(), data.join("dirlink")).expect("ln");
    nix::unistd::mkfifo(&data.join("fifo"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    std::fs::write(dir.path().join("..driver-state"), "not content").expect("write");
    let files = read(dir.path(), 1 << 20).expect("read");
    let got: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    assert_eq!(got, [("a", &b"1"[..]), ("sub/b", &b"2"[..])]);
}

#[test]
fn read_back_without_data_link_reads_the_target_itself() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("f"), "x").expect("write");
    std::fs::write(dir.path().join("..marker"), "m").expect("write");
    let files = read(dir.path(), 1 << 20).expect("read");
    assert_eq!(files.keys().collect::<Vec<_>>(), ["f"]);
}

#[test]
fn read_back_limits_and_bad_links_are_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    AtomicWriter::new(dir.path())
        .write(&payload(&[("a", "0123456789", 0o644)]))
        .expect("write");
    let err = read(dir.path(), 8).expect_err("over the limit");
    assert_eq!(err.to_string(), "content exceeds the read limit of 8 bytes");
    assert_eq!(
        read(dir.path(), 11).expect("at the limit")["a"],
        b"0123456789"
    );

    let evil = tempfile::tempdir().expect("tmp");
    std::os::unix::fs::symlink("/etc", evil.path().join(DATA_DIR_LINK)).expect("ln");
    let err = read(evil.path(), 1 << 20).expect_err("..data outside");
    assert!(
        err.to_string()
            .ends_with("..data\": does not link to a data directory of the writer"),
        "{err}"
    );
    // The target itself may not be a symlink either.
    let link = evil.path().join("target");
    std::os::unix::fs::symlink(dir.path(), &link).expect("ln");
    let err = read(&link, 1 << 20).expect_err("symlinked target");
    assert!(err.to_string().starts_with("open "), "{err}");
}

/// Found by `fuzz/fuzz_targets/atomic_writer.rs`: with `..data` linking out
/// of the target, the writer took that directory for its old data directory,
/// compared against it and then removed it (as root: any directory).
#[test]
fn a_data_link_out_of_the_target_is_neither_read_nor_removed() {
    let root = tempfile::tempdir().expect("tmp");
    let outside = root.path().join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    std::fs::write(outside.join("canary"), "keep").expect("write");
    for i in 0..3 {
        let target = root.path().join(format!("target{i}"));
        std::fs::create_dir(&target).expect("mkdir");
        let link = match i {
            0 => PathBuf::from("../outside"),
            1 => outside.clone(),
            // A name of the writer's shape that is itself a symlink out.
            _ => {
                std::os::unix::fs::symlink("../outside", target.join("..2026_01_01")).expect("ln");
                PathBuf::from("..2026_01_01")
            }
        };
        std::os::unix::fs::symlink(link, target.join(DATA_DIR_LINK)).expect("ln");
        let p = payload(&[("a", "1", 0o644)]);
        let out = AtomicWriter::new(&target).write(&p).expect("write");
        assert_eq!(out, Outcome::Written, "case {i}");
        assert_eq!(
            std::fs::read_to_string(outside.join("canary")).expect("canary kept"),
            "keep",
            "case {i}"
        );
        let got = read(&target, 1 << 20).expect("read");
        assert_eq!(got.get("a").map(Vec::as_slice), Some(&b"1"[..]), "case {i}");
    }
}

/// Found by `fuzz/fuzz_targets/atomic_writer.rs`: a path nested deeper than
/// the read-back descends was written, and then the whole volume failed to
/// read back. The deepest accepted path writes and reads back.
#[test]
fn the_deepest_accepted_path_reads_back() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = format!("{}f", "d/".repeat(MAX_DEPTH - 1));
    AtomicWriter::new(dir.path())
        .write(&payload(&[(&path, "x", 0o644)]))
        .expect("write");
    let got = read(dir.path(), 1 << 20).expect("read back");
    assert_eq!(got.get(&path).map(Vec::as_slice), Some(&b"x"[..]));
}

/// Found by `fuzz/fuzz_targets/atomic_writer.rs`: content that differed only
/// in a group mode bit was taken as unchanged and kept its old mode.
#[test]
fn a_mode_change_in_group_bits_is_written() {
    let dir = tempfile::tempdir().expect("tmp");
    let w = AtomicWriter::new(dir.path());
    w.write(&payload(&[("a", "x", 0o600)])).expect("write");
    let out = w.write(&payload(&[("a", "x", 0o610)])).expect("write");
    assert_eq!(out, Outcome::Written);
    assert_eq!(mode_of(&dir.path().join("a")), 0o610);
    let out = w.write(&payload(&[("a", "x", 0o610)])).expect("write");
    assert_eq!(out, Outcome::Unchanged);
}

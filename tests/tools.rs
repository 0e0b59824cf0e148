#![cfg(not(target_arch = "wasm32"))]
//! The `gen-checkpoint` and `quantize` binaries, run as processes: byte-identical to the
//! shared test models (which llama2.c's export.py layouts produced), the group-size rule,
//! and clear errors on bad arguments and bad files.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use llama2_wasm::native::read_checkpoint;
use llama2_wasm::Format;

const GEN: &str = env!("CARGO_BIN_EXE_gen-checkpoint");
const QUANTIZE: &str = env!("CARGO_BIN_EXE_quantize");

fn run(exe: &str, args: &[&str]) -> Output {
    Command::new(exe).args(args).output().unwrap_or_else(|e| panic!("cannot run {exe}: {e}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs the tool, expecting success, and returns the bytes it wrote to `path`.
fn written(exe: &str, args: &[&str], path: &Path) -> Vec<u8> {
    let out = run(exe, args);
    assert!(out.status.success(), "{exe} {args:?} failed: {}", stderr(&out));
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Fails with the first differing byte rather than two dumps of megabytes.
fn assert_same_bytes(got: &[u8], expected: &[u8], what: &str) {
    if got != expected {
        let at = got
            .iter()
            .zip(expected)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(expected.len()));
        panic!(
            "{what}: {} bytes, expected {}; first difference at byte {at}",
            got.len(),
            expected.len()
        );
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 test path")
}

/// gen-checkpoint `args` + output must equal the shared model `expected`.
fn check_gen(test: &str, args: &[&str], expected: &str) {
    let Some(expected_path) = common::fixture(expected) else {
        return;
    };
    let out = common::out_dir(test).join(expected);
    let mut all = args.to_vec();
    all.push(s(&out));
    let got = written(GEN, &all, &out);
    let expected_bytes = std::fs::read(&expected_path).expect("fixture");
    assert_same_bytes(&got, &expected_bytes, &format!("gen-checkpoint {args:?} vs {expected}"));
}

/// quantize `input` (+ `args`) must equal the shared model `expected`.
fn check_quantize(test: &str, input: &str, args: &[&str], expected: &str) {
    let (Some(input), Some(expected_path)) = (common::fixture(input), common::fixture(expected))
    else {
        return;
    };
    let out = common::out_dir(test).join(expected);
    let mut all = vec![s(&input), s(&out)];
    all.extend_from_slice(args);
    let got = written(QUANTIZE, &all, &out);
    let expected_bytes = std::fs::read(&expected_path).expect("fixture");
    assert_same_bytes(&got, &expected_bytes, &format!("quantize {input:?} {args:?} vs {expected}"));
}

#[test]
fn gen_checkpoint_reproduces_gqa_v0() {
    check_gen("gen_gqa_v0", &["--shape", "64,192,2,4,2,32000,128", "--seed", "7"], "gqa-v0.bin");
}

#[test]
fn gen_checkpoint_reproduces_unshared_v0() {
    check_gen(
        "gen_unshared_v0",
        &["--shape", "48,128,2,4,4,32000,64", "--seed", "11", "--unshared"],
        "unshared-v0.bin",
    );
}

#[test]
fn gen_checkpoint_reproduces_gqa_v1() {
    check_gen(
        "gen_gqa_v1",
        &["--shape", "64,192,2,4,2,32000,128", "--seed", "7", "--format", "v1"],
        "gqa-v1.bin",
    );
}

#[test]
fn gen_checkpoint_v2_is_the_quantized_formula() {
    check_gen(
        "gen_gqa_v2",
        &["--seed", "7", "--format", "v2", "--shape", "64,192,2,4,2,32000,128"],
        "gqa-v2.bin",
    );
}

#[test]
fn quantize_gqa_v0_is_gqa_v2() {
    check_quantize("quantize_gqa_v0", "gqa-v0.bin", &[], "gqa-v2.bin");
}

#[test]
fn quantize_gqa_v1_is_gqa_v2() {
    check_quantize("quantize_gqa_v1", "gqa-v1.bin", &["--group-size", "64"], "gqa-v2.bin");
}

#[test]
fn quantize_aidreams260k_with_group_size_4() {
    check_quantize(
        "quantize_aidreams",
        "aidreams260K.bin",
        &["--group-size", "4"],
        "aidreams260K-v2.bin",
    );
}

#[test]
fn quantize_stories260k_with_group_size_4() {
    check_quantize(
        "quantize_stories",
        "stories260K.bin",
        &["--group-size", "4"],
        "stories260K-v2.bin",
    );
}

/// The rule, written out independently: halve until the size divides dim and hidden_dim.
fn expected_group_size(dim: usize, hidden: usize, requested: usize) -> usize {
    let mut gs = requested;
    while !dim.is_multiple_of(gs) || !hidden.is_multiple_of(gs) {
        gs /= 2;
    }
    gs
}

fn header_group_size(bytes: &[u8]) -> i32 {
    i32::from_le_bytes(bytes[37..41].try_into().unwrap())
}

/// stories42M's hidden_dim 1376 is 21.5 x 64: export.py keeps 64 (dim 512 allows it) and
/// runq.c then skips w2's last columns. Ours halves to 32. Same on a small shape with
/// dim 64 and hidden_dim 1376, and for a few requested sizes.
#[test]
fn quantize_halves_the_group_size_until_it_divides_hidden_dim() {
    let dir = common::out_dir("group_size");
    let fp32 = dir.join("hidden1376-v0.bin");
    let shape = "64,1376,1,4,4,16,8";
    let out = run(GEN, &["--shape", shape, "--seed", "3", s(&fp32)]);
    assert!(out.status.success(), "{}", stderr(&out));
    for (requested, args) in [
        (64, vec![]),
        (64, vec!["--group-size", "64"]),
        (128, vec!["--group-size", "128"]),
        (48, vec!["--group-size", "48"]),
        (4, vec!["--group-size", "4"]),
        (1, vec!["--group-size", "1"]),
    ] {
        let q = dir.join(format!("hidden1376-gs{requested}.bin"));
        let mut all = vec![s(&fp32), s(&q)];
        all.extend(args.iter().copied());
        let bytes = written(QUANTIZE, &all, &q);
        let want = expected_group_size(64, 1376, requested);
        assert_eq!(header_group_size(&bytes), want as i32, "requested {requested}");
        // The loader accepts it with that group size.
        let checkpoint = read_checkpoint(&q).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(checkpoint.format(), Format::V2 { group_size: want });
        if requested == 64 {
            // export.py would have kept 64 (it divides dim); 1376 needs 32.
            assert_eq!(want, 32);
            assert!(stderr(&run(QUANTIZE, &all)).contains("reduced to 32"));
        }
    }
    // gen-checkpoint --format v2 follows the same rule and equals quantize of its v0.
    let direct = dir.join("hidden1376-direct-v2.bin");
    let bytes =
        written(GEN, &["--shape", shape, "--seed", "3", "--format", "v2", s(&direct)], &direct);
    let quantized = std::fs::read(dir.join("hidden1376-gs64.bin")).unwrap();
    assert_same_bytes(&bytes, &quantized, "gen-checkpoint --format v2 vs quantize of its v0");
}

/// The values are what docs/llama2c.md's formula says, not only the same bytes as the fixtures:
/// the first embedding values of seed 7 and the all-ones norms.
#[test]
fn gen_checkpoint_values_follow_the_formula() {
    let path = common::out_dir("formula").join("tiny.bin");
    let bytes = written(
        GEN,
        &["--shape", "8,16,1,2,1,4,4", "--seed", "7", "--format", "v1", s(&path)],
        &path,
    );
    let mut rng = llama2_wasm::Rng::new(7);
    let f32_at = |i: usize| f32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
    let (dim, layers) = (8, 1);
    let norms = 2 * layers * dim + dim;
    for i in 0..norms {
        assert_eq!(f32_at(256 + 4 * i), 1.0, "norm {i}");
    }
    for i in 0..4 * dim {
        let u = (rng.next_u32() >> 8) as f32 / 16_777_216.0;
        assert_eq!(f32_at(256 + 4 * (norms + i)), (u * 2.0 - 1.0) * 0.05, "embedding value {i}");
    }
    let checkpoint = read_checkpoint(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(checkpoint.format(), Format::V1);
    assert_eq!(checkpoint.config().kv_dim(), 4);
}

/// Every named shape is a valid checkpoint header (written for the smallest).
#[test]
fn gen_checkpoint_named_shapes() {
    let path = common::out_dir("named").join("260K-v2.bin");
    written(
        GEN,
        &["--shape", "260K", "--seed", "1", "--format", "v2", "--group-size", "4", s(&path)],
        &path,
    );
    let checkpoint = read_checkpoint(&path).unwrap_or_else(|e| panic!("{e}"));
    let c = checkpoint.config();
    assert_eq!(
        [c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len],
        [64, 172, 5, 8, 4, 512, 512]
    );
    assert_eq!(checkpoint.format(), Format::V2 { group_size: 4 });
}

/// Bad arguments: exit code 2 and the usage. Bad inputs: exit code 1 and a message that
/// names the file. Nothing is left behind when writing fails.
#[test]
fn tools_refuse_bad_arguments() {
    let dir = common::out_dir("bad_args");
    let out_file = dir.join("out.bin");
    let o = s(&out_file);
    let bad_usage: &[(&str, &[&str])] = &[
        (QUANTIZE, &[]),
        (QUANTIZE, &["only-one.bin"]),
        (QUANTIZE, &["a.bin", "b.bin", "c.bin"]),
        (QUANTIZE, &["a.bin", "b.bin", "--group-size"]),
        (QUANTIZE, &["a.bin", "b.bin", "--group-size", "0"]),
        (QUANTIZE, &["a.bin", "b.bin", "--group-size", "-4"]),
        (QUANTIZE, &["a.bin", "b.bin", "--group-size", "abc"]),
        (QUANTIZE, &["a.bin", "b.bin", "--bogus"]),
        (GEN, &[]),
        (GEN, &["--seed", "1", o]),
        (GEN, &["--shape", "15M", o]),
        (GEN, &["--shape", "15M", "--seed", "1"]),
        (GEN, &["--shape", "1,2,3", "--seed", "1", o]),
        (GEN, &["--shape", "64,192,2,4,2,32000,0", "--seed", "1", o]),
        (GEN, &["--shape", "64,192,2,4,2,32000,-1", "--seed", "1", o]),
        (GEN, &["--shape", "13B", "--seed", "1", o]), // a name it does not know
        (GEN, &["--shape", "15M", "--seed", "x", o]),
        (GEN, &["--shape", "15M", "--seed", "1", "--format", "v3", o]),
        (GEN, &["--shape", "15M", "--seed", "1", "--group-size", "32", o]),
        (GEN, &["--shape", "15M", "--seed", "1", "--format", "v2", "--group-size", "0", o]),
        (GEN, &["--shape", "15M", "--seed", "1", "--frobnicate", o]),
        (GEN, &["--shape", "15M", "--seed", "1", o, "second.bin"]),
        (GEN, &["--shape"]),
    ];
    for (exe, args) in bad_usage {
        let out = run(exe, args);
        assert_eq!(out.status.code(), Some(2), "{exe} {args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("Usage:"), "{exe} {args:?}: no usage in {}", stderr(&out));
    }
    assert!(!out_file.exists(), "a refused command wrote {o}");

    // Shapes the engine would refuse are refused before writing.
    for shape in
        ["64,192,2,5,5,32,8", "64,192,2,4,3,32,8", "64,192,2,64,64,32,8", "64,192,2,4,8,32,8"]
    {
        let out = run(GEN, &["--shape", shape, "--seed", "1", o]);
        assert_eq!(out.status.code(), Some(1), "{shape}: {}", stderr(&out));
        assert!(stderr(&out).contains("--shape"), "{shape}: {}", stderr(&out));
    }

    // Missing, unreadable, corrupt and already-int8 inputs name the file.
    let missing = dir.join("no-such-model.bin");
    let corrupt = dir.join("corrupt-model.bin");
    std::fs::write(&corrupt, [7u8; 100]).unwrap();
    let mut cases: Vec<(PathBuf, &str)> =
        vec![(missing, "no-such-model.bin"), (corrupt, "corrupt-model.bin")];
    if let Some(v2) = common::fixture("gqa-v2.bin") {
        cases.push((v2, "already int8"));
    }
    for (input, expected) in &cases {
        let out = run(QUANTIZE, &[s(input), o]);
        assert_eq!(out.status.code(), Some(1), "{input:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{input:?}: '{expected}' not in {}", stderr(&out));
    }
    assert!(!out_file.exists(), "a failed quantize left {o}");

    // An output that cannot be created names it.
    let unwritable = dir.join("no-such-dir").join("out.bin");
    let out = run(GEN, &["--shape", "8,16,1,2,1,4,4", "--seed", "1", s(&unwritable)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no-such-dir"), "{}", stderr(&out));
}

// What the tools do to the path they write: a write that fails leaves it as it was, and no
// path the tool did not create is ever removed (once, `quantize m.bin /dev/stdout | head`
// run as root deleted /dev/stdout, and a symlink given as output was removed).

/// A small checkpoint to quantize in `dir`: gen-checkpoint's 260K shape.
fn small_checkpoint(dir: &Path) -> PathBuf {
    let path = dir.join("in.bin");
    written(GEN, &["--shape", "260K", "--seed", "3", s(&path)], &path);
    path
}

/// The entries of `dir`, sorted: what a tool left there.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[cfg(unix)]
#[test]
fn a_device_as_output_is_written_to_and_never_removed() {
    let input = small_checkpoint(&common::out_dir("tools_device"));
    let out = run(QUANTIZE, &[s(&input), "/dev/null"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // /dev/full fails every write with ENOSPC: the error is said, the device stays. (Never
    // run this against a tool that removes its output on error, as root: it deletes /dev/full.)
    assert!(std::fs::metadata("/dev/full").is_ok(), "this machine has no /dev/full");
    let out = run(QUANTIZE, &[s(&input), "/dev/full"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("/dev/full"), "{}", stderr(&out));
    for device in ["/dev/null", "/dev/full"] {
        let meta = std::fs::metadata(device).expect("the device is still there");
        assert!(!meta.is_file(), "{device} is still a device");
    }
}

#[cfg(unix)]
#[test]
fn a_pipe_as_output_is_written_to_directly() {
    let input = small_checkpoint(&common::out_dir("tools_pipe"));
    // `quantize in.bin /dev/stdout | head -c 100`: the reader goes away early.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("'{QUANTIZE}' '{}' /dev/stdout | head -c 100 | wc -c", s(&input)))
        .output()
        .expect("sh");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "100", "{}", stderr(&out));
    let meta = std::fs::symlink_metadata("/dev/stdout").expect("/dev/stdout is still there");
    assert!(!meta.is_file(), "/dev/stdout is still what it was, not a file the tool made");
}

#[cfg(unix)]
#[test]
fn a_symlink_as_output_stays_a_link_to_the_new_file() {
    let dir = common::out_dir("tools_symlink");
    let input = small_checkpoint(&dir);
    let target = dir.join("target.bin");
    let link = dir.join("link.bin");
    std::fs::write(&target, b"old").expect("write");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let out = run(QUANTIZE, &[s(&input), s(&link)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::symlink_metadata(&link).expect("link").file_type().is_symlink());
    let c = read_checkpoint(&target).expect("the link's file is the new checkpoint");
    assert!(matches!(c.format(), Format::V2 { .. }));
    assert_eq!(listing(&dir), ["in.bin", "link.bin", "target.bin"], "no temporary file left");
}

/// A full disk, as `ulimit -f` makes one for the tool alone: its writes past the limit fail
/// (EFBIG; SIGXFSZ ignored, so the write returns the error as on a full disk).
#[cfg(unix)]
#[test]
fn a_write_that_fails_midway_leaves_the_old_file_and_no_part() {
    let dir = common::out_dir("tools_full");
    let input = small_checkpoint(&dir);
    let out_path = dir.join("out.bin");
    std::fs::write(&out_path, b"the user's file").expect("write");
    for (tool, args) in [
        (QUANTIZE, vec![s(&input).to_string(), s(&out_path).to_string()]),
        (GEN, ["--shape", "260K", "--seed", "3", s(&out_path)].map(String::from).to_vec()),
    ] {
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("trap '' XFSZ; ulimit -f 64; exec '{tool}' {}", quoted.join(" ")))
            .output()
            .expect("sh");
        assert!(!out.status.success(), "{tool}: the write was to fail");
        assert!(stderr(&out).contains("out.bin"), "{tool}: {}", stderr(&out));
        assert_eq!(std::fs::read(&out_path).expect("read"), b"the user's file", "{tool}");
        assert_eq!(listing(&dir), ["in.bin", "out.bin"], "{tool}: no temporary file left");
    }
}

#[test]
fn a_checkpoint_larger_than_the_disk_is_refused_before_writing() {
    let dir = common::out_dir("tools_huge");
    let out_path = dir.join("huge.bin");
    // 123 TB of weights: no disk here has room.
    let out =
        run(GEN, &["--shape", "65536,65536,1024,64,64,32000,128", "--seed", "1", s(&out_path)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("free on its disk"), "{}", stderr(&out));
    assert!(!out_path.exists());
    assert!(listing(&dir).is_empty(), "nothing written: {:?}", listing(&dir));
}

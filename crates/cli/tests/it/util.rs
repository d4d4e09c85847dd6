//! Running the command line as a process, for every module of this suite.
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The command line built for these tests.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edge-authz"))
}

/// Runs it in `dir` and waits for it.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    bin().current_dir(dir).args(args).output().unwrap()
}

/// Runs it in `dir` with `input` on standard input (written from another thread, so a large
/// input cannot deadlock against the output pipes).
pub fn run_with_stdin(dir: &Path, args: &[&str], input: &[u8]) -> Output {
    let mut child = bin()
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        // A command that stops reading early closes the pipe: not this test's failure.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

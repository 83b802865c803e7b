//! Running the `proconsul` binary to completion (CLI commands, agents that
//! must refuse to start), with a time bound.

use std::fs::{self, File};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_proconsul");

/// What a finished (or killed) run left behind.
#[derive(Debug)]
pub struct RunOutput {
    /// `None` when the process had to be killed at the deadline.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    /// The exit code, panicking with the output if it was killed or signalled.
    #[track_caller]
    pub fn code(&self) -> i32 {
        self.status
            .and_then(|s| s.code())
            .unwrap_or_else(|| panic!("process did not exit by itself: {self:?}"))
    }
}

/// Runs `BIN args...` with `env` added and `stdin` fed in, killing it after
/// `timeout`.
pub fn run_bin(args: &[&str], env: &[(&str, &str)], stdin: &[u8], timeout: Duration) -> RunOutput {
    run_program(BIN, args, env, stdin, timeout)
}

/// Runs `program args...` with `env` added and `stdin` fed in, killing it
/// after `timeout`. Output goes through files, so a chatty program cannot
/// block on a full pipe.
pub fn run_program(program: &str, args: &[&str], env: &[(&str, &str)], stdin: &[u8], timeout: Duration) -> RunOutput {
    let dir = tempfile::tempdir().expect("temp dir for a run");
    let stdin_path = dir.path().join("stdin");
    let stdout_path = dir.path().join("stdout");
    let stderr_path = dir.path().join("stderr");
    fs::write(&stdin_path, stdin).expect("write stdin file");
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir.path())
        .env_remove("CONSUL_HTTP_ADDR")
        .env_remove("CONSUL_HTTP_TOKEN")
        .stdin(Stdio::from(File::open(&stdin_path).expect("open stdin file")))
        .stdout(Stdio::from(File::create(&stdout_path).expect("create stdout file")))
        .stderr(Stdio::from(File::create(&stderr_path).expect("create stderr file")));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {program} {args:?}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().expect("wait for child") {
            Some(status) => break Some(status),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => thread::sleep(Duration::from_millis(20)),
        }
    };
    RunOutput {
        status,
        stdout: fs::read_to_string(&stdout_path).unwrap_or_default(),
        stderr: fs::read_to_string(&stderr_path).unwrap_or_default(),
    }
}

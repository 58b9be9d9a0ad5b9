//! The orchestrator's handle on a node process: this test binary run again with a
//! [`NodeSpec`], its stdout read line by line on a thread, stopped by closing its stdin.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::checker::Report;
use crate::faults::Pausable;
use crate::spec::{NODE_VARIABLE, NodeSpec};

/// How long a node may take to connect, or to finish once told to stop.
const NODE_TIMEOUT: Duration = Duration::from_secs(30);

/// A running node.
pub struct NodeProcess {
    child: Child,
    /// Closing it tells the node to stop.
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// A report line seen while waiting for another line.
    report: Option<Report>,
}

impl Pausable for NodeProcess {
    /// Freezes the node (SIGSTOP).
    fn pause(&mut self) {
        self.signal("STOP");
    }

    /// Thaws the node (SIGCONT).
    fn resume(&mut self) {
        self.signal("CONT");
    }
}

impl NodeProcess {
    /// Starts a node and waits until it says it is connected.
    pub fn start(spec: &NodeSpec) -> NodeProcess {
        let exe = std::env::current_exe().expect("the path of this test binary");
        let mut child = Command::new(exe)
            .env(NODE_VARIABLE, spec.to_env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| panic!("start a {:?} node: {error}", spec.role));
        let stdout = child.stdout.take().expect("a piped stdout");
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let mut node = NodeProcess {
            stdin: child.stdin.take(),
            child,
            lines,
            report: None,
        };
        if let Err(reason) = node.wait_for(crate::node::READY, NODE_TIMEOUT) {
            panic!("a {:?} node did not start: {reason}", spec.role);
        }
        node
    }

    /// Waits until the node prints `expected`, keeping any report it prints meanwhile.
    pub fn wait_for(&mut self, expected: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == expected => return Ok(()),
                Ok(line) => self.report = Report::from_line(&line).or(self.report.take()),
                Err(RecvTimeoutError::Timeout) => return Err(format!("no `{expected}` within {timeout:?}")),
                Err(RecvTimeoutError::Disconnected) => return Err(format!("exited before `{expected}`")),
            }
        }
    }

    /// Sends the node `signal` (`STOP`, `CONT`).
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .unwrap_or_else(|error| panic!("kill -{signal}: {error}"));
        assert!(status.success(), "kill -{signal} {} failed", self.child.id());
    }

    /// Kills the node with SIGKILL, wherever it is.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Tells the node to stop, waits for it (killing it after [`NODE_TIMEOUT`]) and returns
    /// the last report it printed, if any.
    pub fn finish(mut self) -> Option<Report> {
        drop(self.stdin.take());
        let deadline = Instant::now() + NODE_TIMEOUT;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => self.report = Report::from_line(&line).or(self.report.take()),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    eprintln!("a node did not stop within {NODE_TIMEOUT:?}: killed");
                    break;
                }
            }
        }
        self.kill();
        self.report
    }
}

//! Integration tests of the harness crate: crash recovery through a real child process.

mod crash;

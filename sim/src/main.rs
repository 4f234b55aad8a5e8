fn main() {
    // `sim run … | head` should end quietly when the reader goes away, as other Unix tools do,
    // rather than fail a write and report an internal error. Rust ignores SIGPIPE by default.
    // SAFETY: restoring the default disposition of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(sim::cli::main());
}

//! Conformance runner: checks official MLS test-vector files (or any file of
//! the same formats) against mls-nostd. Usage, output and exit status:
//! [`mls_tests::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    // A panic in a check is caught and reported as that case's failure.
    std::panic::set_hook(Box::new(|_| {}));
    let code = mls_tests::cli::run(std::env::args_os().skip(1), &mut std::io::stdout(), &mut std::io::stderr());
    ExitCode::from(code)
}

//! `mls-fleet`: an IoT fleet in one MLS group (the project's main job).
//! See `platform_std::fleet` for what it simulates and `--help` for options.
use platform_std::fleet::{self, args};
use std::process::ExitCode;

fn main() -> ExitCode {
    let config = match args::parse(std::env::args().skip(1)) {
        Ok(args::Command::Help) => {
            println!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(args::Command::Run(config)) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let seed = config.resolve_seed();
    let origin = if config.seed.is_some() { "given" } else { "from the OS RNG" };
    println!(
        "mls-fleet: gateway + {} devices, {} rounds, cipher suite 0x{:04x}",
        config.devices,
        config.rounds,
        config.suite.to_u16()
    );
    println!("seed {seed} ({origin}; replay with --seed {seed})");
    match fleet::run(&config, seed) {
        Ok(report) => {
            println!("\n{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

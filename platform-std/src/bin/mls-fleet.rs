//! `mls-fleet`: an IoT fleet in one MLS group (the project's main job).
//! See `platform_std::fleet` for what it simulates and `--help` for options.
use platform_std::fleet::{self, args};
use std::io::Write;
use std::process::ExitCode;

/// Writes to stdout; a closed stdout (e.g. `| head`) ends the run with one line.
fn out(text: std::fmt::Arguments<'_>) -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_fmt(text).and_then(|()| stdout.flush()).map_err(|e| format!("writing the output: {e}"))
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn main_inner() -> Result<(), (u8, String)> {
    let config = match args::parse(std::env::args().skip(1)).map_err(|e| (2, e))? {
        args::Command::Help => return out(format_args!("{}\n", args::USAGE)).map_err(|e| (1, e)),
        args::Command::Run(config) => config,
        args::Command::Member(m) => {
            // One member of a fleet over a broker: its result goes to its directory.
            return fleet::broker::run_member(&m).map(|_| ()).map_err(|e| (1, e.to_string()));
        }
        args::Command::Broker { config, host, port, threads } => {
            out(format_args!(
                "mls-fleet over mqtt://{host}:{port}: gateway + {} device{} as {}, {} round{}, cipher suite 0x{:04x}\n",
                config.devices,
                plural(config.devices as u64),
                if threads { "threads of this process" } else { "separate processes" },
                config.rounds,
                plural(config.rounds),
                config.suite.to_u16(),
            ))
            .map_err(|e| (1, e))?;
            let mode = if threads { fleet::broker::Mode::Threads } else { fleet::broker::Mode::Processes };
            let report = fleet::broker::run(&host, port, config.devices, config.rounds, config.suite, config.state_dir.as_deref(), mode)
                .map_err(|e| (1, e.to_string()))?;
            return out(format_args!("\n{report}\n")).map_err(|e| (1, e));
        }
    };
    let prepared = fleet::prepare(&config, config.resolve_seed()).map_err(|e| (1, e.to_string()))?;
    let seed = prepared.seed();
    let origin = match (prepared.resuming(), config.seed) {
        (Some(_), _) => "saved in the state directory",
        (None, Some(_)) => "given",
        (None, None) => "from the OS RNG",
    };
    let dir = prepared.state_dir().display().to_string();
    let state = match prepared.resuming() {
        Some(p) => format!("state directory {dir}: resuming after round {} of {}", p.rounds_done, config.rounds),
        None if prepared.is_temporary() => {
            format!("state directory {dir} (a fresh temporary one; continue this run with --state-dir {dir} --rounds R)")
        }
        None => format!("state directory {dir} (new)"),
    };
    out(format_args!(
        "mls-fleet: gateway + {} device{}, {} round{}, cipher suite 0x{:04x}\nseed {seed} ({origin}; replay with --seed {seed})\n{state}\n",
        config.devices,
        plural(config.devices as u64),
        config.rounds,
        plural(config.rounds),
        config.suite.to_u16(),
    ))
    .map_err(|e| (1, e))?;
    let report = prepared.run().map_err(|e| (1, e.to_string()))?;
    out(format_args!("\n{report}\n")).map_err(|e| (1, e))
}

fn main() -> ExitCode {
    match main_inner() {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, e)) => {
            eprintln!("error: {e}");
            ExitCode::from(code)
        }
    }
}

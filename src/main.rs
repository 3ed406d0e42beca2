use std::process::ExitCode;

fn main() -> ExitCode {
    metricsctl::run(std::env::args_os())
}

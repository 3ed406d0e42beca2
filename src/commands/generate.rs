//! `metricsctl generate N`: synthetic events on stdout or into a file.

use std::fs::File;
use std::io::{BufWriter, ErrorKind, Write};

use anyhow::{Context as _, anyhow};

use crate::cli::GenerateArgs;
use crate::ingest::generate::{self, EventGenerator, EventWriter, GeneratorSettings};
use crate::status::{CommandResult, CouldNotRun, Failure, Status};

pub fn exec(args: &GenerateArgs) -> CommandResult {
    let settings = GeneratorSettings {
        count: args.count.unwrap_or_default(),
        sensors: args.sensors,
        seed: args.seed,
        start: args.start,
        interval_ms: i64::try_from(args.interval.as_millis()).unwrap_or(i64::MAX),
        kafka_partitions: args.kafka_partitions,
    };
    if !args.sample && generate::last_timestamp(&settings).is_none() {
        return Err(Failure::could_not_run(anyhow!(
            "{} events over {} sensors every {} from {} run past the year 9999: \
             use fewer events, more sensors or a shorter --interval",
            settings.count,
            args.sensors,
            humantime::format_duration(args.interval),
            args.start.to_rfc3339()
        )));
    }
    let to_stdout = args.output.is_none();
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))
                .could_not_run()?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let sink = BufWriter::with_capacity(256 * 1024, sink);
    let written = if args.gzip {
        let encoder = flate2::write::GzEncoder::new(sink, flate2::Compression::fast());
        write_all(settings, args, encoder)
            .and_then(|encoder| Ok(encoder.finish()?))
            .and_then(|mut sink| Ok(sink.flush()?))
    } else {
        write_all(settings, args, sink).and_then(|mut sink| Ok(sink.flush()?))
    };
    match written {
        Ok(()) => Ok(Status::Ok),
        // `metricsctl generate 1000000 | head` is not an error.
        Err(error) if to_stdout && io_error_kind(&error) == Some(ErrorKind::BrokenPipe) => {
            Ok(Status::Ok)
        }
        Err(error) => {
            let target = match &args.output {
                Some(path) => path.display().to_string(),
                None => "stdout".to_string(),
            };
            Err(Failure::could_not_run(
                error.context(format!("writing the events to {target} failed")),
            ))
        }
    }
}

/// The I/O error under a serialisation error, if there is one.
fn io_error_kind(error: &anyhow::Error) -> Option<ErrorKind> {
    error.chain().find_map(|cause| {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        if let Some(json) = cause.downcast_ref::<serde_json::Error>() {
            return json.io_error_kind();
        }
        match cause.downcast_ref::<csv::Error>().map(csv::Error::kind) {
            Some(csv::ErrorKind::Io(io)) => Some(io.kind()),
            _ => None,
        }
    })
}

fn write_all<W: Write>(
    settings: GeneratorSettings,
    args: &GenerateArgs,
    mut out: W,
) -> anyhow::Result<W> {
    if args.sample {
        generate::write_demo_sample(&mut out)?;
        return Ok(out);
    }
    let mut writer = EventWriter::new(args.format, out);
    for event in EventGenerator::new(settings) {
        writer.write(&event)?;
    }
    writer.finish()
}

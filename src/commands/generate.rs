//! `metricsctl generate N`: synthetic events on stdout or into a file.

use std::fs::File;
use std::io::{BufWriter, Write};

use anyhow::Context as _;

use crate::cli::GenerateArgs;
use crate::generate::{EventGenerator, EventWriter, GeneratorSettings};
use crate::status::{CommandResult, CouldNotRun, Status};

pub fn exec(args: &GenerateArgs) -> CommandResult {
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))
                .could_not_run()?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let sink = BufWriter::with_capacity(256 * 1024, sink);
    let settings = GeneratorSettings {
        count: args.count,
        sensors: args.sensors,
        seed: args.seed,
        start: args.start,
        interval_ms: i64::try_from(args.interval.as_millis()).unwrap_or(i64::MAX),
        kafka_partitions: args.kafka_partitions,
    };
    if args.gzip {
        let encoder = flate2::write::GzEncoder::new(sink, flate2::Compression::fast());
        write_all(settings, args, encoder)?.finish()?.flush()?;
    } else {
        write_all(settings, args, sink)?.flush()?;
    }
    Ok(Status::Ok)
}

fn write_all<W: Write>(
    settings: GeneratorSettings,
    args: &GenerateArgs,
    out: W,
) -> anyhow::Result<W> {
    let mut writer = EventWriter::new(args.format, out);
    for event in EventGenerator::new(settings) {
        writer.write(&event)?;
    }
    writer.finish()
}

//! Generates the tonic/prost code and a descriptor set (for gRPC reflection).
//! protoc comes from `protoc-bin-vendored`, so a fresh machine needs nothing installed.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "proto/events/v1/events.proto",
    "proto/events/v1/content.proto",
    "proto/content/v1/content.proto",
    "proto/content/v1/menu.proto",
    "proto/interaction/v1/interaction.proto",
    "proto/stats/v1/stats.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let well_known = protoc_bin_vendored::include_path()?;

    let mut prost_config = prost_build::Config::new();
    prost_config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);

    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("descriptor.bin"))
        .compile_with_config(
            prost_config,
            &PROTOS.iter().map(PathBuf::from).collect::<Vec<_>>(),
            &[PathBuf::from("proto"), well_known],
        )?;
    Ok(())
}

//! Opening audit files to read back (`audit verify`, `policy replay`, `policy suggest`).

/// Audit files to read, each with its name.
pub type Files = Vec<(String, Box<dyn std::io::BufRead>)>;

/// Opens audit files to read in order, those ending in `.gz` (as logrotate compresses them)
/// decompressed as they are read.
pub fn open(files: &[std::path::PathBuf]) -> Result<Files, String> {
    use std::io::BufReader;
    let mut inputs: Files = Vec::new();
    for path in files {
        let file = std::fs::File::open(path).map_err(|e| format!("`{}`: {e}", path.display()))?;
        let reader: Box<dyn std::io::BufRead> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(BufReader::with_capacity(
                256 * 1024,
                flate2::read::MultiGzDecoder::new(file),
            ))
        } else {
            Box::new(BufReader::with_capacity(256 * 1024, file))
        };
        inputs.push((path.display().to_string(), reader));
    }
    Ok(inputs)
}

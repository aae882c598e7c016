//! Writing 2-D projections as 8-bit grayscale PNGs.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use tessera::{Chunk, Error, Result};

/// Writes a 2-D block as a grayscale PNG, scaling its min..max range to 0..255.
pub fn write_png(path: &Path, image: &Chunk) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| Error::storage(path.display().to_string(), e.to_string());
    let [h, w] = image.shape() else {
        return Err(Error::invalid("write_png", format!("expected a 2-D image, got shape {:?}", image.shape())));
    };
    let values = image.cast(tessera::DType::F64);
    let values = values.typed::<f64>()?;
    let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
    let pixels: Vec<u8> = values.iter().map(|&v| ((v - lo) * scale).round() as u8).collect();
    let file = File::create(path).map_err(|e| err(&e))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), *w as u32, *h as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    // fdeflate: a fraction of the default level's time, for a slightly larger file.
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(|e| err(&e))?;
    writer.write_image_data(&pixels).map_err(|e| err(&e))?;
    writer.finish().map_err(|e| err(&e))
}

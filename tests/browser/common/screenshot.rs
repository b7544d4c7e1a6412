//! Screenshots, decoded and checked for what they show.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::PathBuf;

/// The page's colours, as its legend shows them.
pub const DONE: [u8; 3] = [0x2c, 0xa0, 0x2c];
pub const FAILED: [u8; 3] = [0xd6, 0x27, 0x28];
pub const RUNNING: [u8; 3] = [0xff, 0x9f, 0x1c];

/// A decoded screenshot.
pub struct Screenshot {
    pub width: u32,
    pub height: u32,
    pixels: Vec<[u8; 3]>,
    pub path: PathBuf,
}

impl Screenshot {
    /// Saves `png` under the target folder as `name.png`, and decodes it.
    pub fn saved(png: &[u8], name: &str) -> Screenshot {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
        std::fs::create_dir_all(&dir).expect("a folder for screenshots");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("the screenshot is saved");
        let mut decoder = png::Decoder::new(Cursor::new(png));
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().expect("a PNG");
        let mut buffer = vec![0; reader.output_buffer_size().expect("a size")];
        let frame = reader.next_frame(&mut buffer).expect("a frame");
        let channels = frame.color_type.samples();
        let pixels = buffer[..frame.buffer_size()]
            .chunks_exact(channels)
            .map(|px| match channels {
                1 | 2 => [px[0]; 3],
                _ => [px[0], px[1], px[2]],
            })
            .collect();
        Screenshot {
            width: frame.width,
            height: frame.height,
            pixels,
            path,
        }
    }

    /// How many pixels are `colour`, give or take a little.
    pub fn count(&self, colour: [u8; 3]) -> usize {
        self.pixels
            .iter()
            .filter(|px| px.iter().zip(colour).all(|(a, b)| a.abs_diff(b) <= 6))
            .count()
    }

    /// How many pixels each colour covers.
    fn histogram(&self) -> HashMap<[u8; 3], usize> {
        let mut counts: HashMap<[u8; 3], usize> = HashMap::new();
        for px in &self.pixels {
            *counts.entry(*px).or_default() += 1;
        }
        counts
    }

    /// The distinct colours that cover at least `min` pixels each.
    pub fn colours(&self, min: usize) -> usize {
        self.histogram().values().filter(|&&n| n >= min).count()
    }

    /// Checks that it shows something: not one colour, but several.
    pub fn assert_not_blank(&self) {
        let total = self.pixels.len();
        assert!(total > 0, "{}: empty", self.path.display());
        let commonest = self.histogram().values().copied().max().unwrap_or(0);
        assert!(
            commonest * 100 < total * 95,
            "{}: {}% of it is one colour",
            self.path.display(),
            commonest * 100 / total
        );
        let colours = self.colours(20);
        assert!(
            colours >= 6,
            "{}: only {colours} colours",
            self.path.display()
        );
    }

    /// Checks that at least `min` pixels are `colour`.
    pub fn assert_has(&self, colour: [u8; 3], min: usize, what: &str) {
        let n = self.count(colour);
        assert!(
            n >= min,
            "{}: {n} pixels of {what} ({colour:02x?}), wanted {min}",
            self.path.display()
        );
    }
}

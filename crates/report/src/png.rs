//! The charts as PNG files: the very SVG strings of [`crate::svg`], rasterized with resvg
//! (pure Rust). Text needs a font: fontdb loads the system fonts (Debian: fonts-dejavu-core,
//! declared in scripts/apt-packages.d/report.txt); the charts ask for "DejaVu Sans".

use std::path::{Path, PathBuf};

use resvg::{tiny_skia, usvg};

use crate::svg::Chart;
use crate::ReportError;

/// Rasterization settings, shared by every chart (the font database is loaded once).
#[derive(Debug)]
pub struct Rasterizer {
    options: usvg::Options<'static>,
    /// Pixels per SVG unit (2: sharp enough for papers).
    pub scale: f32,
}

impl Default for Rasterizer {
    fn default() -> Self {
        Rasterizer::new()
    }
}

impl Rasterizer {
    /// Loads the system fonts.
    pub fn new() -> Rasterizer {
        let mut options = usvg::Options {
            font_family: "DejaVu Sans".into(),
            ..usvg::Options::default()
        };
        options.fontdb_mut().load_system_fonts();
        Rasterizer {
            options,
            scale: 2.0,
        }
    }

    /// Fonts found (0: text will be missing from the PNGs).
    pub fn fonts(&self) -> usize {
        self.options.fontdb.len()
    }

    /// One chart as PNG bytes.
    pub fn png(&self, chart: &Chart) -> Result<Vec<u8>, ReportError> {
        let tree =
            usvg::Tree::from_str(&chart.svg, &self.options).map_err(|e| ReportError::Svg {
                chart: chart.id.clone(),
                detail: e.to_string(),
            })?;
        let size = tree
            .size()
            .to_int_size()
            .scale_by(self.scale)
            .ok_or_else(|| ReportError::Png {
                chart: chart.id.clone(),
                detail: "empty size".into(),
            })?;
        let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).ok_or_else(|| {
            ReportError::Png {
                chart: chart.id.clone(),
                detail: format!("cannot allocate {}x{}", size.width(), size.height()),
            }
        })?;
        resvg::render(
            &tree,
            tiny_skia::Transform::from_scale(self.scale, self.scale),
            &mut pixmap.as_mut(),
        );
        pixmap.encode_png().map_err(|e| ReportError::Png {
            chart: chart.id.clone(),
            detail: e.to_string(),
        })
    }
}

/// Writes `<dir>/<chart id>.png` for every chart; returns the paths in chart order.
pub fn write_pngs(charts: &[Chart], dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let r = Rasterizer::new();
    let mut out = Vec::new();
    for c in charts {
        let bytes = r.png(c)?;
        let path = dir.join(format!("{}.png", c.id));
        let tmp = dir.join(format!(".{}.png.partial", c.id));
        std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        out.push(path);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxray_scan::report::Report;

    #[test]
    fn every_chart_rasterizes_to_a_non_blank_png() {
        let mut r = Report::default();
        let mut d = mxray_model::examples::domain();
        r.add_domain(&d);
        d.vantage = "second".into();
        r.add_domain(&d);
        r.finish();
        let dir = std::env::temp_dir().join(format!("mxray-report-png-{}", std::process::id()));
        let charts = crate::svg::charts(&r);
        let paths = write_pngs(&charts, &dir).expect("pngs");
        assert_eq!(paths.len(), charts.len());
        for p in &paths {
            let pix = tiny_skia::Pixmap::load_png(p).expect("decodable");
            assert_eq!((pix.width(), pix.height()), (1360, 600), "{}", p.display());
            let dark = pix.pixels().iter().filter(|c| c.red() < 128).count();
            assert!(dark > 500, "{}: {dark} dark pixels", p.display());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

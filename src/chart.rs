//! Price charts: an image (SVG or PNG) and a terminal sparkline, from plain
//! points.
//!
//! Pure rendering: the input is a [`ChartSpec`] built by the caller (from
//! price history, a row's maximum, its alerts and a typical range), so this
//! module depends on neither the store nor the verdict.
//!
//! - [`svg`] and [`png`] draw price over time as a line, the maximum as a
//!   horizontal line, each alert as a filled circle and the typical range as
//!   a shaded band, on axes labelled with dates (UTC) and prices in major
//!   units. One drawing function, generic over `plotters`' backend, serves
//!   both: the SVG backend writes `<text>` elements and leaves the glyphs to
//!   whatever renders the SVG; the bitmap backend rasterises every glyph
//!   itself. [`write`] picks the format from a file's extension
//!   ([`ImageFormat`]).
//! - Text is laid out, and in a PNG drawn, with DejaVu Sans
//!   (`assets/fonts/DejaVuSans.ttf`, its licence beside it), embedded in
//!   the binary and registered with `plotters`' `ab_glyph` support: no
//!   font-kit, no fontconfig, no system fonts, so a PNG looks the same on a
//!   bare server as on a desktop, and SVG label boxes are measured, not
//!   guessed.
//! - [`sparkline`] maps prices onto `▁▂▃▄▅▆▇█`.
//!
//! Edge cases never panic: no points gives a chart that says "no prices
//! yet" (so an API can always serve an image); one point is drawn as a
//! marker with a padded time axis; equal prices get a padded price axis; any
//! `i64` is drawn (coordinates are `f64`, so values near `i64::MAX` lose
//! precision, not the chart).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

/// Width of the chart, in pixels.
pub const WIDTH: u32 = 800;
/// Height of the chart, in pixels.
pub const HEIGHT: u32 = 400;

/// The most minor-unit decimals [`svg`] accepts (ISO 4217 uses at most 4).
pub const MAX_DECIMALS: u32 = 9;

/// The price line's colour (SVG `#1F77B4`).
const PRICE: RGBColor = RGBColor(0x1F, 0x77, 0xB4);
/// The maximum's colour (SVG `#FF7F0E`).
const MAXIMUM: RGBColor = RGBColor(0xFF, 0x7F, 0x0E);
/// The alert markers' colour (SVG `#D62728`).
const ALERT: RGBColor = RGBColor(0xD6, 0x27, 0x28);
/// The typical range's colour (SVG `#2CA02C`), drawn at [`BAND_OPACITY`].
const BAND: RGBColor = RGBColor(0x2C, 0xA0, 0x2C);
const BAND_OPACITY: f64 = 0.2;

/// The family every label asks for; [`FONT_DATA`] is registered under it.
const FONT: &str = "sans-serif";

/// DejaVu Sans 2.37, unmodified (`assets/fonts/`, with its licence): every
/// label's glyphs and metrics. Embedded rather than looked up, so rendering
/// needs no system fonts; about 740 KiB of the binary.
static FONT_DATA: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// Registers [`FONT_DATA`] as [`FONT`] with `plotters`, once per process
/// (its font table is global). Every label needs it, SVG ones included: the
/// `ab_glyph` text support measures text with the registered font.
fn register_font() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FONT, FontStyle::Normal, FONT_DATA).is_ok());
    if ok {
        Ok(())
    } else {
        Err(ChartError::Font)
    }
}

/// An image format the chart can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// SVG: scalable, small, text stays text (what the API serves).
    Svg,
    /// PNG: a bitmap of [`WIDTH`] x [`HEIGHT`] pixels, for anything that
    /// cannot show SVG (chat apps, e-mail).
    Png,
}

impl ImageFormat {
    /// Every format, in the order they are offered.
    pub const ALL: [ImageFormat; 2] = [ImageFormat::Svg, ImageFormat::Png];

    /// The format a file name asks for by its extension (`.svg` or `.png`,
    /// any case); `None` for anything else.
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?;
        Self::ALL
            .into_iter()
            .find(|f| f.extension().eq_ignore_ascii_case(extension))
    }

    /// The file extension, without the dot: `svg` or `png`.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Svg => "svg",
            Self::Png => "png",
        }
    }
}

/// One observed price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// When the price was seen.
    pub at: jiff::Timestamp,
    /// The price in minor units of [`ChartSpec::currency`].
    pub price_minor: i64,
}

/// Everything [`svg`] and [`png`] draw.
#[derive(Debug, Clone, Copy)]
pub struct ChartSpec<'a> {
    /// The caption, e.g. `"LHR → JFK, 2026-06-01"`.
    pub title: &'a str,
    /// The currency code shown on the price axis, e.g. `"EUR"`.
    pub currency: &'a str,
    /// The currency's minor-unit exponent (2 for EUR, 0 for JPY), at most
    /// [`MAX_DECIMALS`].
    pub decimals: u32,
    /// Prices over time, in any order (they are sorted by time).
    pub points: &'a [Point],
    /// The most the row will pay, drawn as a horizontal line.
    pub max_price_minor: Option<i64>,
    /// Prices that raised an alert, each marked with a circle.
    pub alerts: &'a [Point],
    /// The typical range `(low, high)` in minor units, drawn as a band.
    pub typical_range: Option<(i64, i64)>,
}

/// Why a chart could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The currency exponent is larger than [`MAX_DECIMALS`].
    #[error("currency decimals {0} is out of range (at most {MAX_DECIMALS})")]
    Decimals(u32),
    /// The embedded font could not be loaded (a broken build).
    #[error("the chart font embedded in farewatch cannot be loaded")]
    Font,
    /// [`write`] was given a file name that is neither `.svg` nor `.png`.
    #[error("cannot tell the chart format of {}: the name must end in .svg or .png", .path.display())]
    Format {
        /// The file name as given.
        path: PathBuf,
    },
    /// The chart file could not be written.
    #[error("cannot write the chart to {}: {source}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The plotting backend failed.
    #[error("drawing the chart failed: {0}")]
    Draw(String),
}

fn draw_err<E: std::fmt::Display>(e: E) -> ChartError {
    ChartError::Draw(e.to_string())
}

/// Renders `spec` as an SVG document of [`WIDTH`] x [`HEIGHT`] pixels.
///
/// With no points the SVG holds the title and "no prices yet" only.
///
/// # Errors
/// [`ChartError::Decimals`] when `spec.decimals` exceeds [`MAX_DECIMALS`];
/// [`ChartError::Font`] if the embedded font cannot be loaded;
/// [`ChartError::Draw`] if the backend fails.
pub fn svg(spec: &ChartSpec<'_>) -> Result<String, ChartError> {
    prepare(spec)?;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, spec)?;
        root.present().map_err(draw_err)?;
    }
    Ok(out)
}

/// Renders `spec` as a PNG of [`WIDTH`] x [`HEIGHT`] pixels (RGB) at
/// `path`, replacing any file there: the same drawing as [`svg`], text
/// drawn with the embedded font.
///
/// # Errors
/// As [`svg`]; [`ChartError::Format`] unless `path` ends in `.png` (the
/// encoder picks the format by the extension); [`ChartError::Write`] when
/// the file cannot be created.
pub fn png(spec: &ChartSpec<'_>, path: &Path) -> Result<(), ChartError> {
    if ImageFormat::from_path(path) != Some(ImageFormat::Png) {
        return Err(ChartError::Format {
            path: path.to_owned(),
        });
    }
    prepare(spec)?;
    // The encoder reports I/O failures only as its own debug text; creating
    // the file first gives a plain "permission denied" or "no such
    // directory" before any drawing.
    std::fs::File::create(path).map_err(|source| ChartError::Write {
        path: path.to_owned(),
        source,
    })?;
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    draw(&root, spec)?;
    root.present().map_err(|e| ChartError::Write {
        path: path.to_owned(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// Writes `spec` to `path` in the format its extension names
/// ([`ImageFormat::from_path`]): an [`svg`] or a [`png`]. Returns the format.
///
/// # Errors
/// As [`svg`] and [`png`]; [`ChartError::Format`] for any other extension.
pub fn write(spec: &ChartSpec<'_>, path: &Path) -> Result<ImageFormat, ChartError> {
    let format = ImageFormat::from_path(path).ok_or_else(|| ChartError::Format {
        path: path.to_owned(),
    })?;
    match format {
        ImageFormat::Svg => {
            let svg = svg(spec)?;
            std::fs::write(path, svg).map_err(|source| ChartError::Write {
                path: path.to_owned(),
                source,
            })?;
        }
        ImageFormat::Png => png(spec, path)?,
    }
    Ok(format)
}

/// What every format checks before drawing: the decimals and the font.
fn prepare(spec: &ChartSpec<'_>) -> Result<(), ChartError> {
    if spec.decimals > MAX_DECIMALS {
        return Err(ChartError::Decimals(spec.decimals));
    }
    register_font()
}

/// Draws `spec` on `root`, whatever the backend: the one drawing of the
/// chart, shared by [`svg`] and [`png`]. The caller presents the result.
fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    spec: &ChartSpec<'_>,
) -> Result<(), ChartError> {
    root.fill(&WHITE).map_err(draw_err)?;
    if spec.points.is_empty() {
        draw_empty(root, spec.title)
    } else {
        draw_chart(root, spec)
    }
}

fn draw_empty<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<(), ChartError> {
    let centre = Pos::new(HPos::Center, VPos::Center);
    let (w, h) = (WIDTH as i32, HEIGHT as i32);
    root.draw(&Text::new(
        title.to_string(),
        (w / 2, 30),
        (FONT, 22).into_font().into_text_style(root).pos(centre),
    ))
    .map_err(draw_err)?;
    root.draw(&Text::new(
        "no prices yet",
        (w / 2, h / 2),
        (FONT, 18).into_font().color(&BLACK.mix(0.6)).pos(centre),
    ))
    .map_err(draw_err)?;
    Ok(())
}

/// `(low, high)` of `values`, widened by 8% of the span on each side; when
/// the span is empty, by `flat_pad` or `flat_rel` of the value, the larger.
fn padded(values: impl Iterator<Item = f64>, flat_pad: f64, flat_rel: f64) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let span = hi - lo;
    if span > 0.0 && span.is_finite() {
        (lo - span * 0.08, hi + span * 0.08)
    } else {
        let pad = (lo.abs() * flat_rel).max(flat_pad);
        (lo - pad, hi + pad)
    }
}

fn draw_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    spec: &ChartSpec<'_>,
) -> Result<(), ChartError> {
    let mut points: Vec<(f64, f64)> = spec.points.iter().map(xy).collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let alerts: Vec<(f64, f64)> = spec.alerts.iter().map(xy).collect();
    let major = 10f64.powi(spec.decimals as i32);

    const HALF_DAY: f64 = 12.0 * 3600.0;
    let (x0, x1) = padded(points.iter().chain(&alerts).map(|p| p.0), HALF_DAY, 0.0);
    let extra_y = spec
        .max_price_minor
        .into_iter()
        .chain(spec.typical_range.into_iter().flat_map(|(a, b)| [a, b]))
        .map(|v| v as f64);
    let (y0, y1) = padded(
        points.iter().chain(&alerts).map(|p| p.1).chain(extra_y),
        major,
        0.05,
    );

    let x_span = x1 - x0;
    let date_format = if x_span < 3.0 * 86_400.0 {
        "%b %d %H:%M"
    } else if x_span < 300.0 * 86_400.0 {
        "%b %d"
    } else {
        "%Y-%m-%d"
    };
    let x_label = |x: &f64| {
        jiff::Timestamp::from_second(x.round() as i64)
            .map(|t| t.strftime(date_format).to_string())
            .unwrap_or_default()
    };
    let shown_decimals = if (y1 - y0) / major >= 20.0 {
        0
    } else {
        spec.decimals as usize
    };
    let y_label = |y: &f64| format!("{:.*}", shown_decimals, y / major);

    let mut chart = ChartBuilder::on(root)
        .caption(spec.title, (FONT, 22))
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_labels(6)
        .y_labels(6)
        .x_label_style((FONT, 14))
        .y_label_style((FONT, 14))
        .axis_desc_style((FONT, 14))
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .y_desc(spec.currency)
        .light_line_style(BLACK.mix(0.05))
        .draw()
        .map_err(draw_err)?;

    let swatch = |colour: RGBAColor| {
        move |(x, y): (i32, i32)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.filled())
    };

    if let Some((a, b)) = spec.typical_range {
        let (lo, hi) = (a.min(b) as f64, a.max(b) as f64);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x0, lo), (x1, hi)],
                BAND.mix(BAND_OPACITY).filled(),
            )))
            .map_err(draw_err)?
            .label("typical range")
            .legend(swatch(BAND.mix(BAND_OPACITY)));
    }
    if let Some(max) = spec.max_price_minor {
        let max = max as f64;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x0, max), (x1, max)],
                MAXIMUM.stroke_width(2),
            )))
            .map_err(draw_err)?
            .label(format!(
                "max {:.*} {}",
                spec.decimals as usize,
                max / major,
                spec.currency
            ))
            .legend(swatch(MAXIMUM.mix(1.0)));
    }
    chart
        .draw_series(LineSeries::new(
            points.iter().copied(),
            PRICE.stroke_width(2),
        ))
        .map_err(draw_err)?
        .label("price")
        .legend(swatch(PRICE.mix(1.0)));
    if points.len() == 1 {
        // A one-point line is invisible: mark the point itself.
        chart
            .draw_series(
                points.iter().map(|&p| {
                    EmptyElement::at(p) + Rectangle::new([(-4, -4), (4, 4)], PRICE.filled())
                }),
            )
            .map_err(draw_err)?;
    }
    if !alerts.is_empty() {
        chart
            .draw_series(alerts.iter().map(|&p| Circle::new(p, 5, ALERT.filled())))
            .map_err(draw_err)?
            .label("alert")
            .legend(swatch(ALERT.mix(1.0)));
    }

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 13))
        .draw()
        .map_err(draw_err)?;
    Ok(())
}

fn xy(p: &Point) -> (f64, f64) {
    (p.at.as_second() as f64, p.price_minor as f64)
}

/// The eight levels of [`sparkline`], lowest first.
pub const SPARK_LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// One character per price, scaled between the lowest (`▁`) and the highest
/// (`█`) of `prices`. Empty input gives an empty string; equal prices give
/// `▄` for each (a level line, neither low nor high).
pub fn sparkline(prices: &[i64]) -> String {
    let (Some(&lo), Some(&hi)) = (prices.iter().min(), prices.iter().max()) else {
        return String::new();
    };
    let span = i128::from(hi) - i128::from(lo);
    prices
        .iter()
        .map(|&p| {
            if span == 0 {
                return SPARK_LEVELS[3];
            }
            let level = (i128::from(p) - i128::from(lo)) * 7 / span;
            SPARK_LEVELS[level as usize]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_known_inputs() {
        assert_eq!(sparkline(&[1, 2, 3, 4, 5, 6, 7, 8]), "▁▂▃▄▅▆▇█");
        assert_eq!(sparkline(&[8, 1]), "█▁");
        assert_eq!(sparkline(&[]), "");
        assert_eq!(sparkline(&[5, 5, 5]), "▄▄▄");
        assert_eq!(sparkline(&[7]), "▄");
    }

    #[test]
    fn sparkline_survives_the_i64_extremes() {
        assert_eq!(sparkline(&[i64::MIN, 0, i64::MAX]), "▁▄█");
    }

    #[test]
    fn padding_never_gives_an_empty_range() {
        let (lo, hi) = padded([250.0].into_iter(), 100.0, 0.05);
        assert!(lo < 250.0 && hi > 250.0);
        let (lo, hi) = padded([0.0, 0.0].into_iter(), 1.0, 0.05);
        assert_eq!((lo, hi), (-1.0, 1.0));
        let big = i64::MAX as f64;
        let (lo, hi) = padded([big, big].into_iter(), 1.0, 0.05);
        assert!(lo < hi);
        let (lo, hi) = padded([1.7e9].into_iter(), 43_200.0, 0.0);
        assert_eq!((lo, hi), (1.7e9 - 43_200.0, 1.7e9 + 43_200.0));
        assert!(lo < hi);
    }

    #[test]
    fn too_many_decimals_is_an_error() {
        let spec = ChartSpec {
            title: "t",
            currency: "EUR",
            decimals: MAX_DECIMALS + 1,
            points: &[],
            max_price_minor: None,
            alerts: &[],
            typical_range: None,
        };
        assert!(matches!(svg(&spec), Err(ChartError::Decimals(10))));
    }

    #[test]
    fn the_format_follows_the_extension() {
        let format = |name: &str| ImageFormat::from_path(Path::new(name));
        assert_eq!(format("out.svg"), Some(ImageFormat::Svg));
        assert_eq!(format("charts/out.PNG"), Some(ImageFormat::Png));
        assert_eq!(format("out.jpg"), None);
        assert_eq!(format("out"), None);
        assert_eq!(format("png"), None);
        assert_eq!(
            format(".svg"),
            None,
            "a hidden file named svg, no extension"
        );
    }

    #[test]
    fn the_embedded_font_loads() {
        register_font().unwrap();
        register_font().unwrap();
    }

    #[test]
    fn png_needs_a_png_name() {
        let spec = ChartSpec {
            title: "t",
            currency: "EUR",
            decimals: 2,
            points: &[],
            max_price_minor: None,
            alerts: &[],
            typical_range: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let wrong = dir.path().join("chart.svg");
        assert!(matches!(png(&spec, &wrong), Err(ChartError::Format { .. })));
        assert!(!wrong.exists());
        let missing = dir.path().join("no-such-dir/chart.png");
        let error = png(&spec, &missing).unwrap_err();
        assert!(matches!(error, ChartError::Write { .. }), "{error}");
        assert!(error.to_string().contains("no-such-dir"), "{error}");
        let path = dir.path().join("chart.png");
        assert_eq!(write(&spec, &path).unwrap(), ImageFormat::Png);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    }
}

//! The price chart: the SVG parses as XML and holds the expected series;
//! the PNG decodes, at the chart's size, with each series' colour and
//! text drawn; edge cases render; the sparkline maps known inputs.
//!
//! `cargo test --test chart -- --ignored write_example_chart` regenerates
//! `docs/images/price-history.svg` for the README.

use std::collections::HashMap;

use farewatch::chart::{self, ChartSpec, Point};
use quick_xml::events::Event;
use quick_xml::Reader;

// The colours chart.rs draws with (plotters writes them as upper-case hex).
const PRICE: &str = "#1F77B4";
const MAXIMUM: &str = "#FF7F0E";
const ALERT: &str = "#D62728";
const BAND: &str = "#2CA02C";

/// One element of the parsed SVG: its name and attributes.
#[derive(Debug)]
struct Element {
    name: String,
    attrs: HashMap<String, String>,
}

impl Element {
    fn attr(&self, key: &str) -> &str {
        self.attrs.get(key).map(String::as_str).unwrap_or("")
    }
}

/// The parsed SVG: every element in document order and all text.
#[derive(Debug)]
struct Svg {
    elements: Vec<Element>,
    text: String,
}

impl Svg {
    fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements.iter().filter(move |e| e.name == name)
    }
    fn polylines(&self, stroke: &str) -> Vec<&Element> {
        self.named("polyline")
            .filter(|e| e.attr("stroke") == stroke)
            .collect()
    }
    fn circles(&self, fill: &str) -> usize {
        self.named("circle")
            .filter(|e| e.attr("fill") == fill)
            .count()
    }
    fn rects(&self, fill: &str) -> Vec<&Element> {
        self.named("rect")
            .filter(|e| e.attr("fill") == fill)
            .collect()
    }
}

/// Parses `svg` with a checking XML reader; panics on malformed XML.
fn parse(svg: &str) -> Svg {
    let mut reader = Reader::from_str(svg);
    reader.config_mut().check_end_names = true;
    let (mut elements, mut text, mut depth, mut roots) = (Vec::new(), String::new(), 0i32, 0);
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("SVG is not XML at {}: {e}", reader.buffer_position()));
        let (start, empty) = match &event {
            Event::Start(s) => (Some(s), false),
            Event::Empty(s) => (Some(s), true),
            Event::End(_) => {
                depth -= 1;
                (None, false)
            }
            Event::Text(t) => {
                text.push_str(&t.decode().expect("UTF-8 text"));
                text.push(' ');
                (None, false)
            }
            Event::Eof => break,
            _ => (None, false),
        };
        if let Some(s) = start {
            if depth == 0 {
                roots += 1;
            }
            if !empty {
                depth += 1;
            }
            let attrs = s
                .attributes()
                .map(|a| {
                    let a = a.expect("well-formed attribute");
                    (
                        String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                        String::from_utf8_lossy(&a.value).into_owned(),
                    )
                })
                .collect();
            elements.push(Element {
                name: String::from_utf8_lossy(s.name().as_ref()).into_owned(),
                attrs,
            });
        }
    }
    assert_eq!(depth, 0, "unbalanced elements");
    assert_eq!(roots, 1, "one root element");
    assert_eq!(elements[0].name, "svg");
    Svg { elements, text }
}

fn polyline_points(e: &Element) -> Vec<(i32, i32)> {
    e.attr("points")
        .split_whitespace()
        .map(|p| {
            let (x, y) = p.split_once(',').expect("x,y");
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect()
}

fn at(day: i64, hour: i64) -> jiff::Timestamp {
    // 2026-03-01T00:00:00Z.
    jiff::Timestamp::from_second(1_772_323_200 + day * 86_400 + hour * 3_600).unwrap()
}

fn spec<'a>(points: &'a [Point], alerts: &'a [Point]) -> ChartSpec<'a> {
    ChartSpec {
        title: "LHR → JFK, 2026-06-01",
        currency: "EUR",
        decimals: 2,
        points,
        max_price_minor: Some(40_000),
        alerts,
        typical_range: Some((39_000, 46_000)),
    }
}

/// Two months of a fare drifting down with daily noise, deterministic.
fn example_points() -> Vec<Point> {
    let mut seed: u64 = 0x5EED;
    (0..60)
        .flat_map(|day| [6, 18].map(move |hour| (day, hour)))
        .map(|(day, hour)| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let noise = ((seed >> 33) % 4_000) as i64 - 2_000;
            let trend = 47_000 - day * 140 + if (35..42).contains(&day) { -3_500 } else { 0 };
            Point {
                at: at(day, hour),
                price_minor: trend + noise,
            }
        })
        .collect()
}

/// Alerts where the price first falls to the maximum after being above it.
fn example_alerts(points: &[Point], max: i64) -> Vec<Point> {
    let mut armed = true;
    let mut alerts = Vec::new();
    for p in points {
        if armed && p.price_minor <= max {
            alerts.push(*p);
            armed = false;
        } else if p.price_minor > max + 1_000 {
            armed = true;
        }
    }
    alerts
}

#[test]
fn full_chart_has_every_series() {
    let points = example_points();
    let alerts = [points[10], points[80], points[100]];
    let svg = parse(&chart::svg(&spec(&points, &alerts)).unwrap());

    let price = svg.polylines(PRICE);
    assert_eq!(price.len(), 1, "one price line");
    assert_eq!(polyline_points(price[0]).len(), points.len());

    let max = svg.polylines(MAXIMUM);
    assert_eq!(max.len(), 1, "one maximum line");
    let ends = polyline_points(max[0]);
    assert_eq!(ends.len(), 2);
    assert_eq!(ends[0].1, ends[1].1, "the maximum is horizontal");

    assert_eq!(svg.circles(ALERT), alerts.len(), "one circle per alert");

    let band = svg.rects(BAND);
    assert!(
        band.iter().any(|r| r.attr("opacity") == "0.2"
            && r.attr("width").parse::<i32>().unwrap() > 500
            && r.attr("height").parse::<i32>().unwrap() > 0),
        "a shaded band across the plot: {band:?}"
    );

    assert!(svg.text.contains("LHR → JFK, 2026-06-01"), "{}", svg.text);
    assert!(svg.text.contains("EUR"));
    assert!(svg.text.contains("Mar"), "date labels: {}", svg.text);
    assert!(svg.text.contains("max 400.00 EUR"), "legend: {}", svg.text);
    assert!(svg.text.contains("typical range"));
}

#[test]
fn optional_series_are_left_out() {
    let points = example_points();
    let spec = ChartSpec {
        max_price_minor: None,
        typical_range: None,
        ..spec(&points, &[])
    };
    let svg = parse(&chart::svg(&spec).unwrap());
    assert_eq!(svg.polylines(PRICE).len(), 1);
    assert!(svg.polylines(MAXIMUM).is_empty());
    assert_eq!(svg.named("circle").count(), 0);
    assert!(svg.rects(BAND).is_empty());
}

#[test]
fn no_points_says_no_prices_yet() {
    let svg = parse(&chart::svg(&spec(&[], &[])).unwrap());
    assert!(svg.text.contains("no prices yet"), "{}", svg.text);
    assert!(svg.text.contains("LHR → JFK"));
    assert_eq!(svg.named("polyline").count(), 0);
    assert_eq!(svg.named("circle").count(), 0);
}

#[test]
fn one_point_is_marked() {
    let points = [Point {
        at: at(3, 12),
        price_minor: 41_234,
    }];
    let svg = parse(&chart::svg(&spec(&points, &points)).unwrap());
    let markers = svg.rects(PRICE);
    assert!(
        markers.iter().any(|r| r.attr("width") == "8"),
        "a marker for the lone price: {markers:?}"
    );
    assert_eq!(svg.circles(ALERT), 1);
    assert!(
        svg.text.contains("Mar 04"),
        "a padded time axis: {:?}",
        svg.text.split_whitespace().collect::<Vec<_>>()
    );
}

#[test]
fn flat_prices_get_a_padded_axis() {
    let points: Vec<Point> = (0..10)
        .map(|d| Point {
            at: at(d, 0),
            price_minor: 50_000,
        })
        .collect();
    let spec = ChartSpec {
        max_price_minor: None,
        typical_range: None,
        ..spec(&points, &[])
    };
    let svg = parse(&chart::svg(&spec).unwrap());
    let line = polyline_points(svg.polylines(PRICE)[0]);
    assert!(line.windows(2).all(|w| w[0].1 == w[1].1), "flat line");
    // The price sits inside the plot, not on its edge.
    assert!(line[0].1 > 60 && line[0].1 < 340, "{line:?}");
}

#[test]
fn extreme_values_render() {
    let points = [
        Point {
            at: at(0, 0),
            price_minor: i64::MAX,
        },
        Point {
            at: at(1, 0),
            price_minor: i64::MIN,
        },
        Point {
            at: at(2, 0),
            price_minor: i64::MAX - 1,
        },
    ];
    let spec = ChartSpec {
        max_price_minor: Some(i64::MAX),
        typical_range: Some((i64::MAX, i64::MIN)),
        ..spec(&points, &points)
    };
    let svg = parse(&chart::svg(&spec).unwrap());
    assert_eq!(svg.circles(ALERT), 3);

    let huge = [Point {
        at: at(0, 0),
        price_minor: i64::MAX,
    }; 4];
    let zero_decimals = ChartSpec {
        decimals: 0,
        currency: "JPY",
        ..spec
    };
    parse(
        &chart::svg(&ChartSpec {
            points: &huge,
            ..zero_decimals
        })
        .unwrap(),
    );
}

#[test]
fn markup_in_the_title_is_escaped() {
    let points = example_points();
    let spec = ChartSpec {
        title: "<A & B> \"quoted\"",
        currency: "<&>",
        ..spec(&points, &[])
    };
    parse(&chart::svg(&spec).unwrap());
    parse(
        &chart::svg(&ChartSpec {
            points: &[],
            ..spec
        })
        .unwrap(),
    );
}

#[test]
fn too_many_decimals_is_an_error() {
    let spec = ChartSpec {
        decimals: 19,
        ..spec(&[], &[])
    };
    assert!(chart::svg(&spec).is_err());
}

/// A decoded PNG: its size and its RGB pixels.
struct Png {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Png {
    fn read(path: &std::path::Path) -> Png {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "the PNG signature");
        assert_eq!(&bytes[12..16], b"IHDR", "IHDR comes first");
        let ihdr = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        let (width, height) = (ihdr(16), ihdr(20));
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .expect("a valid PNG header");
        let mut rgb = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut rgb).expect("the image decodes");
        assert_eq!((frame.width, frame.height), (width, height));
        assert_eq!(frame.color_type, png::ColorType::Rgb);
        assert_eq!(frame.bit_depth, png::BitDepth::Eight);
        rgb.truncate(frame.buffer_size());
        Png { width, height, rgb }
    }

    /// Pixels of exactly `#RRGGBB` in rows `rows`.
    fn count(&self, hex: &str, rows: std::ops::Range<u32>) -> usize {
        let colour: Vec<u8> = (1..7)
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let row_bytes = self.width as usize * 3;
        self.rgb
            .chunks_exact(row_bytes)
            .skip(rows.start as usize)
            .take((rows.end - rows.start) as usize)
            .flat_map(|row| row.chunks_exact(3))
            .filter(|px| *px == colour.as_slice())
            .count()
    }

    /// Dark (text) pixels in rows `rows`.
    fn dark(&self, rows: std::ops::Range<u32>) -> usize {
        let row_bytes = self.width as usize * 3;
        self.rgb
            .chunks_exact(row_bytes)
            .skip(rows.start as usize)
            .take((rows.end - rows.start) as usize)
            .flat_map(|row| row.chunks_exact(3))
            .filter(|px| px.iter().all(|&c| c < 100))
            .count()
    }
}

#[test]
fn the_png_has_every_series_and_its_text() {
    let points = example_points();
    let alerts = [points[10], points[80], points[100]];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chart.png");
    chart::png(&spec(&points, &alerts), &path).unwrap();
    let png = Png::read(&path);
    assert_eq!((png.width, png.height), (chart::WIDTH, chart::HEIGHT));
    let all = 0..png.height;
    // A 2-pixel line through 120 points across ~700 pixels.
    assert!(png.count(PRICE, all.clone()) > 700, "the price line");
    // A 2-pixel horizontal line across the plot.
    assert!(png.count(MAXIMUM, all.clone()) > 1_000, "the maximum line");
    assert!(
        png.count(ALERT, all.clone()) > 3 * 20,
        "three alert circles"
    );
    // The caption (the top 45 rows) is drawn in the embedded font.
    assert!(png.dark(0..45) > 200, "the title's glyphs");
}

#[test]
fn the_png_says_no_prices_yet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.PNG");
    assert_eq!(
        chart::write(&spec(&[], &[]), &path).unwrap(),
        chart::ImageFormat::Png
    );
    let png = Png::read(&path);
    assert_eq!(png.count(PRICE, 0..png.height), 0);
    let middle = chart::HEIGHT / 2;
    // "no prices yet" is grey (60% black on white).
    let grey = png
        .rgb
        .chunks_exact(png.width as usize * 3)
        .skip(middle as usize - 15)
        .take(30)
        .flat_map(|row| row.chunks_exact(3))
        .filter(|px| px.iter().all(|&c| (60..180).contains(&c)))
        .count();
    assert!(grey > 50, "the placeholder text: {grey}");
}

#[test]
fn write_picks_the_format_by_extension() {
    let points = example_points();
    let dir = tempfile::tempdir().unwrap();
    let svg_path = dir.path().join("chart.svg");
    assert_eq!(
        chart::write(&spec(&points, &[]), &svg_path).unwrap(),
        chart::ImageFormat::Svg
    );
    let svg = parse(&std::fs::read_to_string(&svg_path).unwrap());
    assert_eq!(svg.polylines(PRICE).len(), 1);
    let jpg = dir.path().join("chart.jpg");
    let error = chart::write(&spec(&points, &[]), &jpg).unwrap_err();
    assert!(error.to_string().contains(".svg or .png"), "{error}");
    assert!(!jpg.exists());
}

#[test]
fn sparkline_on_known_inputs() {
    assert_eq!(chart::sparkline(&[1, 2, 3, 4, 5, 6, 7, 8]), "▁▂▃▄▅▆▇█");
    assert_eq!(chart::sparkline(&[8, 7, 6, 5, 4, 3, 2, 1]), "█▇▆▅▄▃▂▁");
    assert_eq!(chart::sparkline(&[100, 800, 100]), "▁█▁");
    assert_eq!(chart::sparkline(&[]), "");
    assert_eq!(chart::sparkline(&[42, 42, 42, 42]), "▄▄▄▄");
    assert_eq!(chart::sparkline(&[i64::MIN, i64::MAX]), "▁█");
    assert_eq!(chart::sparkline(&example_prices()).chars().count(), 120);
}

fn example_prices() -> Vec<i64> {
    example_points().iter().map(|p| p.price_minor).collect()
}

fn example_svg() -> String {
    let points = example_points();
    let max = 40_000;
    let alerts = example_alerts(&points, max);
    assert!(!alerts.is_empty(), "the example shows alerts");
    chart::svg(&ChartSpec {
        title: "LHR → JFK, 1 adult, 2026-06-01 (EUR)",
        currency: "EUR",
        decimals: 2,
        points: &points,
        max_price_minor: Some(max),
        alerts: &alerts,
        typical_range: Some((39_000, 46_000)),
    })
    .unwrap()
}

#[test]
fn the_readme_example_renders() {
    let svg = parse(&example_svg());
    assert!(svg.circles(ALERT) >= 1);
}

/// The committed README image is a well-formed chart.
#[test]
fn committed_example_parses() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/images/price-history.svg");
    let svg = parse(&std::fs::read_to_string(path).expect("docs/images/price-history.svg"));
    assert_eq!(svg.polylines(PRICE).len(), 1);
}

#[test]
#[ignore = "regenerates docs/images/price-history.svg"]
fn write_example_chart() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/images/price-history.svg");
    std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
    std::fs::write(path, example_svg()).unwrap();
}

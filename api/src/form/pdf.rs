//! A [`Form`] as a PDF (krilla): A4 landscape, Noto Sans embedded (subset), the heading
//! rows repeated on every page, the signature block after the table. The file's creation
//! date and document id come from the form (the export's pinned instant and a digest of
//! the content), so the same report renders to the same bytes.

use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::{DateTime as PdfDate, Metadata};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::text::{Font, TextDirection};
use krilla::Document;
use sha2::{Digest, Sha256};

use chrono::{Datelike, Timelike};

use super::{sign_notes, Align, Cell, Form, Line};

/// Why a PDF could not be made (never the user's input: the fonts are built in).
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("phông chữ nhúng không đọc được")]
    Font,
    #[error("không tạo được PDF: {0}")]
    Write(String),
}

const PAGE_W: f32 = 841.89;
const PAGE_H: f32 = 595.28;
const MARGIN: f32 = 32.0;
const BODY: f32 = 8.0;
const PAD: f32 = 2.5;

/// One of the two embedded faces, with its advance widths for measuring.
struct Face {
    font: Font,
    face: ttf_parser::Face<'static>,
}

impl Face {
    fn new(data: &'static [u8]) -> Result<Face, PdfError> {
        Ok(Face {
            font: Font::new(data.into(), 0).ok_or(PdfError::Font)?,
            face: ttf_parser::Face::parse(data, 0).map_err(|_| PdfError::Font)?,
        })
    }

    /// Width of `text` at `size` points (advances only; no kerning).
    fn width(&self, text: &str, size: f32) -> f32 {
        let upem = f32::from(self.face.units_per_em());
        let units: f32 = text
            .chars()
            .map(|c| {
                self.face
                    .glyph_index(c)
                    .and_then(|g| self.face.glyph_hor_advance(g))
                    .map(f32::from)
                    .unwrap_or(upem / 2.0)
            })
            .sum();
        units * size / upem
    }

    /// `text` broken into lines no wider than `width` (words kept whole when they fit).
    fn wrap(&self, text: &str, size: f32, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for para in text.split('\n') {
            let mut cur = String::new();
            for word in para.split_whitespace() {
                let candidate = if cur.is_empty() {
                    word.to_string()
                } else {
                    format!("{cur} {word}")
                };
                if self.width(&candidate, size) <= width || cur.is_empty() {
                    cur = candidate;
                } else {
                    lines.push(std::mem::take(&mut cur));
                    cur = word.to_string();
                }
            }
            lines.push(cur);
        }
        lines
    }
}

struct Faces {
    regular: Face,
    bold: Face,
}

impl Faces {
    fn get(&self, bold: bool) -> &Face {
        if bold {
            &self.bold
        } else {
            &self.regular
        }
    }
}

/// Where to put a line of text inside a box.
fn text_x(face: &Face, text: &str, size: f32, x: f32, w: f32, align: Align) -> f32 {
    match align {
        Align::Left => x + PAD,
        Align::Center => x + (w - face.width(text, size)) / 2.0,
        Align::Right => x + w - PAD - face.width(text, size),
    }
}

fn line_height(size: f32) -> f32 {
    size * 1.3
}

/// What is drawn on a page: laid out first, page by page, then written.
enum Op {
    Text {
        x: f32,
        baseline: f32,
        size: f32,
        bold: bool,
        text: String,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
    },
}

/// The pages laid out so far; the last one is being filled.
struct Canvas {
    pages: Vec<Vec<Op>>,
}

impl Canvas {
    fn page(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
    }

    fn rect(&mut self, x: f32, y: f32, w: f32, h: f32) {
        self.page().push(Op::Rect { x, y, w, h });
    }

    /// `lines` centred vertically in the box.
    fn lines(
        &mut self,
        face: &Face,
        bold: bool,
        lines: &[String],
        size: f32,
        (x, y, w, h): (f32, f32, f32, f32),
        align: Align,
    ) {
        let lh = line_height(size);
        let top = y + (h - lh * lines.len() as f32) / 2.0;
        for (i, l) in lines.iter().enumerate() {
            if l.is_empty() {
                continue;
            }
            self.page().push(Op::Text {
                x: text_x(face, l, size, x, w, align),
                baseline: top + lh * i as f32 + size * 0.95,
                size,
                bold,
                text: l.clone(),
            });
        }
    }
}

/// The table's column positions, scaled to the page's width.
struct Grid {
    x: Vec<f32>,
    w: Vec<f32>,
}

impl Grid {
    fn new(form: &Form) -> Grid {
        let total: f64 = form.columns.iter().map(|c| c.width).sum();
        let avail = PAGE_W - 2.0 * MARGIN;
        let w: Vec<f32> = form
            .columns
            .iter()
            .map(|c| (c.width / total) as f32 * avail)
            .collect();
        let mut x = Vec::with_capacity(w.len());
        let mut at = MARGIN;
        for wi in &w {
            x.push(at);
            at += wi;
        }
        Grid { x, w }
    }

    fn span(&self, col: u16, cols: u16) -> (f32, f32) {
        let a = usize::from(col);
        let b = (a + usize::from(cols)).min(self.w.len());
        (
            self.x.get(a).copied().unwrap_or(MARGIN),
            self.w[a.min(b)..b].iter().sum(),
        )
    }
}

struct Writer<'a> {
    form: &'a Form,
    faces: Faces,
    grid: Grid,
    /// Heights of the two heading rows.
    head_h: [f32; 2],
}

impl<'a> Writer<'a> {
    fn new(form: &'a Form) -> Result<Writer<'a>, PdfError> {
        let faces = Faces {
            regular: Face::new(notosans::REGULAR_TTF)?,
            bold: Face::new(notosans::BOLD_TTF)?,
        };
        let grid = Grid::new(form);
        let mut head_h = [line_height(BODY) + 2.0 * PAD; 2];
        for h in &form.headings {
            let (_, w) = grid.span(h.col, h.cols);
            let n = faces.bold.wrap(&h.text, BODY, w - 2.0 * PAD).len() as f32;
            let need = n * line_height(BODY) + 2.0 * PAD;
            if h.rows == 1 {
                let r = usize::from(h.row.min(1));
                head_h[r] = head_h[r].max(need);
            }
        }
        // a cell over both rows must fit in their sum
        for h in form.headings.iter().filter(|h| h.rows > 1) {
            let (_, w) = grid.span(h.col, h.cols);
            let n = faces.bold.wrap(&h.text, BODY, w - 2.0 * PAD).len() as f32;
            let need = n * line_height(BODY) + 2.0 * PAD;
            if head_h[0] + head_h[1] < need {
                head_h[1] = need - head_h[0];
            }
        }
        Ok(Writer {
            form,
            faces,
            grid,
            head_h,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn text(
        &self,
        c: &mut Canvas,
        text: &str,
        size: f32,
        bold: bool,
        y: f32,
        span: (f32, f32),
        align: Align,
    ) -> f32 {
        let face = self.faces.get(bold);
        let lines = face.wrap(text, size, span.1 - 2.0 * PAD);
        let h = lines.len() as f32 * line_height(size);
        c.lines(face, bold, &lines, size, (span.0, y, span.1, h), align);
        h
    }

    /// The top of a report: units and form number, then the title, the period and the
    /// unit of the numbers.
    fn top(&self, c: &mut Canvas) -> f32 {
        let f = self.form;
        let full = PAGE_W - 2.0 * MARGIN;
        let left = (MARGIN, full * 0.42);
        let right = (MARGIN + full * 0.62, full * 0.38);
        let mut yl = MARGIN;
        yl += self.text(c, &f.unit_name, 9.0, true, yl, left, Align::Left);
        yl += self.text(c, &f.receiving_unit, 9.0, true, yl, left, Align::Left);
        let mut yr = MARGIN;
        yr += self.text(c, &f.form_number, 9.0, true, yr, right, Align::Center);
        yr += self.text(c, &f.circular, 8.0, false, yr, right, Align::Center);
        let mut y = yl.max(yr) + 10.0;
        y += self.text(c, &f.title, 12.0, true, y, (MARGIN, full), Align::Center);
        y += self.text(
            c,
            &f.period_line,
            9.5,
            false,
            y,
            (MARGIN, full),
            Align::Center,
        );
        y += self.text(c, &f.unit_note, 8.0, false, y, right, Align::Right);
        y + 2.0
    }

    /// The two heading rows and the column numbers at `y`; returns the y below them.
    fn headings(&self, c: &mut Canvas, y: f32) -> f32 {
        for h in &self.form.headings {
            let (x, w) = self.grid.span(h.col, h.cols);
            let top = if h.row == 0 { y } else { y + self.head_h[0] };
            let height = if h.rows > 1 {
                self.head_h[0] + self.head_h[1]
            } else {
                self.head_h[usize::from(h.row.min(1))]
            };
            c.rect(x, top, w, height);
            let lines = self.faces.bold.wrap(&h.text, BODY, w - 2.0 * PAD);
            c.lines(
                &self.faces.bold,
                true,
                &lines,
                BODY,
                (x, top, w, height),
                Align::Center,
            );
        }
        let y = y + self.head_h[0] + self.head_h[1];
        let h = line_height(BODY) + 2.0 * PAD;
        for (i, col) in self.form.columns.iter().enumerate() {
            let (x, w) = (self.grid.x[i], self.grid.w[i]);
            c.rect(x, y, w, h);
            c.lines(
                &self.faces.regular,
                false,
                std::slice::from_ref(&col.number),
                BODY,
                (x, y, w, h),
                Align::Center,
            );
        }
        y + h
    }

    /// One table line's wrapped cells and height.
    fn cells(&self, l: &Line) -> (f32, Vec<Vec<String>>) {
        let face = self.faces.get(l.bold);
        let cells: Vec<Vec<String>> = l
            .cells
            .iter()
            .enumerate()
            .map(|(i, c)| match c {
                Cell::Text(t) => face.wrap(t, BODY, self.grid.w[i] - 2.0 * PAD),
                other => vec![other.text()],
            })
            .collect();
        let n = cells.iter().map(Vec::len).max().unwrap_or(1) as f32;
        (n * line_height(BODY) + 2.0 * PAD, cells)
    }

    /// Every page's drawing: a section with a caption after the first starts a new page
    /// with the form's top; a line that does not fit starts a new page under the
    /// repeated headings; the signature block moves to a new page when it does not fit.
    fn layout(&self) -> Canvas {
        let f = self.form;
        let bottom = PAGE_H - MARGIN;
        let full = PAGE_W - 2.0 * MARGIN;
        let mut c = Canvas { pages: Vec::new() };
        let mut y = self.top(&mut c);
        y = self.headings(&mut c, y);
        for (si, section) in f.sections.iter().enumerate() {
            if si > 0 && section.caption.is_some() {
                c.new_page();
                y = self.top(&mut c);
                y = self.headings(&mut c, y);
            }
            if let Some(caption) = &section.caption {
                let h = line_height(BODY) + 2.0 * PAD;
                c.rect(MARGIN, y, full, h);
                c.lines(
                    &self.faces.bold,
                    true,
                    std::slice::from_ref(caption),
                    BODY,
                    (MARGIN, y, full, h),
                    Align::Left,
                );
                y += h;
            }
            for l in &section.lines {
                let (h, cells) = self.cells(l);
                if y + h > bottom {
                    c.new_page();
                    y = self.headings(&mut c, MARGIN);
                }
                let face = self.faces.get(l.bold);
                for (i, lines) in cells.iter().enumerate() {
                    let (x, w) = (self.grid.x[i], self.grid.w[i]);
                    c.rect(x, y, w, h);
                    let align = f.columns.get(i).map(|c| c.align).unwrap_or(Align::Left);
                    c.lines(face, l.bold, lines, BODY, (x, y, w, h), align);
                }
                y += h;
            }
        }
        let block = 12.0 + 4.0 * line_height(9.5) + 60.0;
        if y + block > bottom {
            c.new_page();
            y = MARGIN;
        }
        let (sign, seal) = sign_notes();
        let left = (MARGIN, full / 2.0);
        let right = (MARGIN + full / 2.0, full / 2.0);
        y += 12.0;
        y += self.text(&mut c, &f.place_date, 9.5, false, y, right, Align::Center);
        self.text(&mut c, &f.preparer_title, 9.5, true, y, left, Align::Center);
        y += self.text(&mut c, &f.signer_title, 9.5, true, y, right, Align::Center);
        self.text(&mut c, sign, 8.5, false, y, left, Align::Center);
        y += self.text(&mut c, seal, 8.5, false, y, right, Align::Center);
        y += 55.0;
        self.text(&mut c, &f.preparer, 9.5, true, y, left, Align::Center);
        self.text(&mut c, &f.signer, 9.5, true, y, right, Align::Center);
        c
    }

    fn document(&self) -> Result<Vec<u8>, PdfError> {
        let mut doc = Document::new();
        doc.set_metadata(metadata(self.form));
        let settings = PageSettings::from_wh(PAGE_W, PAGE_H)
            .ok_or_else(|| PdfError::Write("khổ giấy".into()))?;
        for ops in self.layout().pages {
            let mut page = doc.start_page_with(settings.clone());
            let mut s = page.surface();
            s.set_fill(None);
            s.set_stroke(Some(Stroke {
                width: 0.5,
                ..Stroke::default()
            }));
            for op in &ops {
                if let Op::Rect { x, y, w, h } = op {
                    if let Some(r) = Rect::from_xywh(*x, *y, *w, *h) {
                        let mut pb = PathBuilder::new();
                        pb.push_rect(r);
                        if let Some(p) = pb.finish() {
                            s.draw_path(&p);
                        }
                    }
                }
            }
            s.set_stroke(None);
            s.set_fill(Some(Fill {
                paint: rgb::Color::new(0, 0, 0).into(),
                opacity: NormalizedF32::ONE,
                rule: Default::default(),
            }));
            for op in ops {
                if let Op::Text {
                    x,
                    baseline,
                    size,
                    bold,
                    text,
                } = op
                {
                    s.draw_text(
                        Point::from_xy(x, baseline),
                        self.faces.get(bold).font.clone(),
                        size,
                        &text,
                        false,
                        TextDirection::Auto,
                    );
                }
            }
            s.finish();
            page.finish();
        }
        doc.finish().map_err(|e| PdfError::Write(format!("{e:?}")))
    }
}

/// Title, language, creation date (the form's instant, UTC) and a document id derived
/// from the content.
fn metadata(f: &Form) -> Metadata {
    let t = f.created;
    let date = PdfDate::new(u16::try_from(t.year()).unwrap_or(0))
        .month(t.month() as u8)
        .day(t.day() as u8)
        .hour(t.hour() as u8)
        .minute(t.minute() as u8)
        .second(t.second() as u8)
        .utc_offset_hour(0);
    let mut h = Sha256::new();
    for part in [
        &f.form_number,
        &f.title,
        &f.period_line,
        &f.unit_name,
        &f.receiving_unit,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for s in &f.sections {
        for l in &s.lines {
            for c in &l.cells {
                h.update(c.text().as_bytes());
                h.update([0]);
            }
        }
    }
    h.update(t.timestamp_micros().to_le_bytes());
    Metadata::new()
        .title(format!("{} — {}", f.title, f.period_line))
        .language("vi".into())
        .creator("giamsat".into())
        .creation_date(date)
        .document_id(hex::encode(&h.finalize()[..16]))
}

/// The form as PDF bytes.
pub fn render(form: &Form) -> Result<Vec<u8>, PdfError> {
    Writer::new(form)?.document()
}

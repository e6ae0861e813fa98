//! The day view's bar chart of amounts by category, as inline SVG geometry: one horizontal bar
//! per category, widths in whole SVG units computed with integers (amounts never pass through a
//! float). The template draws it with classes only (the CSP allows no inline style).

/// One bar.
pub struct Bar {
    /// Top of the bar's row.
    pub y: i64,
    /// Baseline of the row's text.
    pub text_y: i64,
    pub label: String,
    pub value: String,
    pub width: i64,
    /// Where the value's text starts (just past the bar).
    pub value_x: i64,
    /// `c-<category>`, for the colour.
    pub class: String,
}

/// The chart's geometry.
pub struct BarChart {
    pub width: i64,
    pub height: i64,
    /// Where bars start (after the labels).
    pub x0: i64,
    pub bar_height: i64,
    pub bars: Vec<Bar>,
}

const WIDTH: i64 = 760;
const LABEL_WIDTH: i64 = 250;
/// Room left for the value after the longest bar.
const VALUE_ROOM: i64 = 140;
const ROW: i64 = 26;
const BAR: i64 = 18;

/// A chart of `(class, label, amount, amount as text)` rows; negative amounts draw as empty bars.
pub fn bars(rows: &[(&str, String, i64, String)]) -> BarChart {
    let max = rows.iter().map(|r| r.2).max().unwrap_or(0).max(1);
    let room = WIDTH - LABEL_WIDTH - VALUE_ROOM;
    let bars = rows
        .iter()
        .zip(0i64..)
        .map(|((class, label, amount, value), i)| {
            let a = i128::from((*amount).max(0));
            // A non-zero amount gets at least one unit, so it never looks like zero.
            let w = i64::try_from(a * i128::from(room) / i128::from(max)).unwrap_or(room);
            let width = if a > 0 { w.max(1) } else { 0 };
            Bar {
                y: 4 + i * ROW,
                text_y: 4 + i * ROW + BAR - 4,
                label: label.clone(),
                value: value.clone(),
                width,
                value_x: LABEL_WIDTH + width + 6,
                class: format!("c-{class}"),
            }
        })
        .collect::<Vec<_>>();
    let height = 8 + i64::try_from(rows.len()).unwrap_or(0) * ROW;
    BarChart { width: WIDTH, height, x0: LABEL_WIDTH, bar_height: BAR, bars }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_proportional_to_the_largest_amount() {
        let rows = vec![
            ("matched", "Khớp".to_owned(), 1_000_000, "1.000.000 ₫".to_owned()),
            ("refund", "Hoàn tiền".to_owned(), 250_000, String::new()),
            ("fee_mismatch", "Lệch mức phí".to_owned(), 0, String::new()),
            ("amount_mismatch", "x".to_owned(), 1, String::new()),
        ];
        let c = bars(&rows);
        let room = WIDTH - LABEL_WIDTH - VALUE_ROOM;
        assert_eq!(c.bars[0].width, room);
        assert_eq!(c.bars[1].width, room / 4);
        assert_eq!(c.bars[2].width, 0);
        assert_eq!(c.bars[3].width, 1, "a tiny amount is still visible");
        assert!(c.bars[1].y > c.bars[0].y);
        assert_eq!(c.height, 8 + 4 * ROW);
    }

    #[test]
    fn an_empty_day_draws_no_bar_and_does_not_divide_by_zero() {
        let c = bars(&[("matched", "Khớp".to_owned(), 0, String::new())]);
        assert_eq!(c.bars[0].width, 0);
        let huge = bars(&[("matched", "x".to_owned(), i64::MAX, String::new())]);
        assert_eq!(huge.bars[0].width, WIDTH - LABEL_WIDTH - VALUE_ROOM);
    }
}

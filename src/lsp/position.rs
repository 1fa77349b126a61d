//! Byte offsets (what spans hold) to LSP positions and back. LSP counts
//! columns in UTF-16 code units by default, so `é` is one unit and an emoji
//! two, while the spans count bytes: every conversion goes through here.

use lsp_types::{Position, Range};

/// Line starts of one text, for conversions in both directions.
pub struct LineIndex<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    pub fn new(text: &'t str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    /// The position of a byte offset (clamped to the text, and moved back to
    /// a character boundary).
    pub fn position(&self, offset: usize) -> Position {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let col: usize = self.text[self.starts[line]..offset]
            .chars()
            .map(char::len_utf16)
            .sum();
        Position::new(line as u32, col as u32)
    }

    pub fn range(&self, start: usize, end: usize) -> Range {
        Range::new(self.position(start), self.position(end))
    }

    /// The byte offset of a position; past the end of a line is its end,
    /// past the last line the end of the text.
    pub fn offset(&self, pos: Position) -> usize {
        let Some(&start) = self.starts.get(pos.line as usize) else {
            return self.text.len();
        };
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let mut units = 0u32;
        for (i, c) in self.text[start..line_end].char_indices() {
            if units >= pos.character {
                return start + i;
            }
            units += c.len_utf16() as u32;
        }
        line_end
    }

    /// The whole text, for a replace-everything edit.
    pub fn full_range(&self) -> Range {
        self.range(0, self.text.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_columns_round_trip() {
        let text = "a\n\"é🎉\" x\n";
        let idx = LineIndex::new(text);
        let x = text.find('x').unwrap();
        // `"` 1 + é 1 + 🎉 2 + `"` 1 + space 1 = 6 units (9 bytes).
        assert_eq!(idx.position(x), Position::new(1, 6));
        assert_eq!(idx.offset(Position::new(1, 6)), x);
        assert_eq!(idx.offset(Position::new(1, 99)), text.len() - 1);
        assert_eq!(idx.offset(Position::new(9, 0)), text.len());
        assert_eq!(idx.position(text.len()), Position::new(2, 0));
    }
}

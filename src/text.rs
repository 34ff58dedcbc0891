//! Text cut to a size in bytes.
#![forbid(unsafe_code)]

/// The longest prefix of `s` of at most `max` bytes that ends at a character boundary.
pub fn clip(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_is_cut_at_a_character_boundary() {
        assert_eq!(super::clip("abcdef", 3), "abc");
        assert_eq!(super::clip("aé", 3), "aé");
        assert_eq!(super::clip("éé", 3), "é");
        assert_eq!(super::clip("é", 1), "");
        assert_eq!(super::clip("", 5), "");
    }
}

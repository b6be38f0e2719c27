//! String matching form (search.html#string): "case-insensitive and accent-insensitive".
//! Text is decomposed (NFD), combining marks are dropped and letters lower-cased, so that
//! `nguyen` finds `Nguyễn`; `đ`/`Đ` (a letter of its own, not d with a mark) folds to `d`.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// The folded form of `text`, as index rows store it and searches compare it.
pub fn fold(text: &str) -> String {
    let lower: String = text.chars().flat_map(char::to_lowercase).collect();
    lower
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| match c {
            'đ' | 'ð' => 'd',
            'ł' => 'l',
            'ø' => 'o',
            'ı' => 'i',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::fold;
    use proptest::prelude::*;

    #[test]
    fn vietnamese_names_fold_to_plain_letters() {
        assert_eq!(fold("Nguyễn"), "nguyen");
        assert_eq!(fold("ĐẶNG Thị Quỳnh"), "dang thi quynh");
        assert_eq!(fold("Hồ Chí Minh"), "ho chi minh");
        assert_eq!(fold("Müller"), "muller");
    }

    proptest! {
        #[test]
        fn folding_is_idempotent(s in "\\PC{0,30}") {
            let once = fold(&s);
            prop_assert_eq!(fold(&once), once.clone());
        }
    }
}

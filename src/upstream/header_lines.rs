//! Header lines as a flat list, in the order they go on the wire: the headers of a request on
//! its way upstream, and those of the answer it gets. Either carries a handful, each looked at
//! once or twice (the credential set, a default added when absent, the head written; the
//! framing, the content type, the lines relayed): a scan of a few entries costs less than the
//! hashing, index table and two allocations of a `HeaderMap` built once per request only to be
//! written out or copied (bench/PROFILE.md §20). The HTTP/2 and reqwest transports, which take an
//! `http::Request`, get a `HeaderMap` made from the lines ([`HeaderLines::to_map`]); their
//! answers' maps become lines (`From<HeaderMap>`).

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// Header lines, names lower-case (as `HeaderName` keeps them), repeated names allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderLines {
    lines: Vec<(HeaderName, HeaderValue)>,
}

impl HeaderLines {
    /// No lines, room for `n`.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            lines: Vec::with_capacity(n),
        }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&HeaderValue> {
        self.lines.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// True when a line of `name` is present.
    pub fn contains(&self, name: &HeaderName) -> bool {
        self.get(name).is_some()
    }

    /// Adds a line, after any others of the same name.
    pub fn append(&mut self, name: HeaderName, value: HeaderValue) {
        self.lines.push((name, value));
    }

    /// Sets `name` to `value` alone: the first line of that name takes the value, the others
    /// go; without one, the line is added at the end (`HeaderMap::insert`'s meaning).
    pub fn insert(&mut self, name: HeaderName, value: HeaderValue) {
        match self.lines.iter().position(|(n, _)| *n == name) {
            Some(first) => {
                self.lines[first].1 = value;
                let mut at = 0;
                self.lines.retain(|(n, _)| {
                    at += 1;
                    at - 1 <= first || *n != name
                });
            }
            None => self.lines.push((name, value)),
        }
    }

    /// The lines in order.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.lines.iter().map(|(n, v)| (n, v))
    }

    /// How many lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// True without any line.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The lines as a `HeaderMap` (each name's values in their order).
    pub fn to_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.lines.len());
        for (name, value) in &self.lines {
            map.append(name.clone(), value.clone());
        }
        map
    }
}

impl From<HeaderMap> for HeaderLines {
    fn from(map: HeaderMap) -> Self {
        let mut out = Self::with_capacity(map.len());
        let mut current: Option<HeaderName> = None;
        for (name, value) in map {
            if let Some(n) = name {
                current = Some(n);
            }
            if let Some(name) = &current {
                out.append(name.clone(), value);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    fn lines(h: &HeaderLines) -> Vec<(&str, &str)> {
        h.iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or("?")))
            .collect()
    }

    #[test]
    fn insert_replaces_every_line_of_the_name_in_the_first_ones_place() {
        let mut h = HeaderLines::default();
        h.append(HeaderName::from_static("a"), v("1"));
        h.append(HeaderName::from_static("b"), v("2"));
        h.append(HeaderName::from_static("a"), v("3"));
        h.append(HeaderName::from_static("c"), v("4"));
        h.append(HeaderName::from_static("a"), v("5"));
        h.insert(HeaderName::from_static("a"), v("new"));
        assert_eq!(lines(&h), [("a", "new"), ("b", "2"), ("c", "4")]);
        h.insert(HeaderName::from_static("d"), v("6"));
        assert_eq!(
            lines(&h),
            [("a", "new"), ("b", "2"), ("c", "4"), ("d", "6")]
        );
        h.insert(HeaderName::from_static("c"), v("7"));
        assert_eq!(
            lines(&h),
            [("a", "new"), ("b", "2"), ("c", "7"), ("d", "6")]
        );
    }

    #[test]
    fn get_finds_the_first_line_and_contains_tells_absence() {
        let mut h = HeaderLines::with_capacity(2);
        assert!(h.is_empty());
        h.append(http::header::ACCEPT, v("x"));
        h.append(http::header::ACCEPT, v("y"));
        assert_eq!(h.get(&http::header::ACCEPT), Some(&v("x")));
        assert!(h.contains(&http::header::ACCEPT));
        assert!(!h.contains(&http::header::USER_AGENT));
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn a_header_map_converts_both_ways_keeping_repeated_values_in_order() {
        let mut map = HeaderMap::new();
        map.append("x-one", v("1"));
        map.append("x-two", v("2"));
        map.append("x-one", v("3"));
        let flat = HeaderLines::from(map.clone());
        assert_eq!(flat.len(), 3);
        let back = flat.to_map();
        assert_eq!(back, map);
        let ones: Vec<_> = back.get_all("x-one").iter().collect();
        assert_eq!(ones, [&v("1"), &v("3")]);
    }
}

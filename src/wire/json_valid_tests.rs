//! Tests of the one-pass JSON check: what it accepts and refuses, always as serde_json does.

use std::fmt;

use proptest::prelude::*;
use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::*;

/// The members as `serde_json` reads them, in order, keys decoded, duplicates kept.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some(pair) = map.next_entry::<String, Box<RawValue>>()? {
                    out.push(pair);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

fn ours(json: &[u8]) -> Result<Vec<(String, String)>, Rejected> {
    let mut out = Vec::new();
    object_members(json, |k, v| {
        let key: String =
            serde_json::from_slice(&[b"\"", k, b"\""].concat()).map_err(|_| Rejected)?;
        out.push((key, String::from_utf8_lossy(v).into_owned()));
        Ok(())
    })?;
    Ok(out)
}

/// serde_json's members, for a UTF-8 text (serde_json does not check the strings it skips).
fn serdes(json: &[u8]) -> Option<Vec<(String, String)>> {
    if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    std::str::from_utf8(json).ok()?;
    serde_json::from_slice::<IgnoredAny>(json).ok()?;
    let Members(m) = serde_json::from_slice(json).ok()?;
    Some(
        m.into_iter()
            .map(|(k, v)| (k, v.get().to_owned()))
            .collect(),
    )
}

#[test]
fn objects_are_accepted_with_their_members_in_order() {
    let json =
        r#" { "a" : 1 , "b":{"x":["}",{"y":"\"]\u00e9\ud800"}]},"c":"q\"}" ,"d":[1,[2,[]],{}],
        "e":null,"f":-1.5e3,"g":true,"h":false,"a":0.25E+2,"\u0041":"caf\u00e9 → ✓","":-0 } "#
            .as_bytes();
    let got = ours(json).unwrap();
    assert_eq!(Some(got.clone()), serdes(json));
    assert_eq!(got.len(), 11);
    assert_eq!(got[1].1, r#"{"x":["}",{"y":"\"]\u00e9\ud800"}]}"#);
    assert_eq!(got[9], ("A".to_owned(), r#""caf\u00e9 → ✓""#.to_owned()));
    assert_eq!(ours(b"{}").unwrap(), Vec::new());
    assert_eq!(ours(b"\r\n\t {\n}\n").unwrap(), Vec::new());
}

#[test]
fn what_serde_json_refuses_is_refused() {
    for bad in [
        "",
        " ",
        "[1]",
        "\"s\"",
        "{",
        "}",
        r#"{"a":1"#,
        r#"{"a":1}}"#,
        r#"{"a":1} x"#,
        r#"{"a":1},"#,
        r#"{"a" 1}"#,
        r#"{"a":}"#,
        r#"{"a":1,}"#,
        r#"{,}"#,
        r#"{a:1}"#,
        r#"{'a':1}"#,
        r#"{"a":[1,]}"#,
        r#"{"a":[,1]}"#,
        r#"{"a":[1 2]}"#,
        r#"{"a":{"b"}}"#,
        r#"{"a":{"b":1,}}"#,
        r#"{"a":01}"#,
        r#"{"a":-}"#,
        r#"{"a":+1}"#,
        r#"{"a":1.}"#,
        r#"{"a":.5}"#,
        r#"{"a":1e}"#,
        r#"{"a":1e+}"#,
        r#"{"a":0x10}"#,
        r#"{"a":NaN}"#,
        r#"{"a":Infinity}"#,
        r#"{"a":tru}"#,
        r#"{"a":True}"#,
        r#"{"a":nul}"#,
        r#"{"a":nulll}"#,
        r#"{"a":"x\"#,
        r#"{"a":"x\q"}"#,
        r#"{"a":"x\u12"}"#,
        r#"{"a":"x\u12g4"}"#,
        r#"{"a":"x\U1234"}"#,
        r#"{"a":"x"#,
        "{\"a\":\"tab\there\"}",
        "{\"a\":\"line\nbreak\"}",
        "{\"a\":\"nul\0\"}",
        "{\"a\":1}\0",
        "{\"a\":1}\u{a0}",
        "\u{feff}{\"a\":1}",
        "{\"a\":1 /* no */}",
    ] {
        assert_eq!(ours(bad.as_bytes()), Err(Rejected), "{bad:?}");
        assert_eq!(serdes(bad.as_bytes()), None, "{bad:?}");
    }
}

#[test]
fn a_string_is_checked_whatever_its_length_and_wherever_its_special_bytes_are() {
    // Past the block size and around it, with an escape, a control byte or the end at every
    // position.
    for len in 0..70 {
        for at in 0..len {
            for special in [
                &b"\\n"[..],
                b"\\u00e9",
                b"\\\"",
                b"\x01",
                b"\x1f",
                b"\\x",
                b"\"",
            ] {
                let mut text = vec![b'a'; len];
                text.splice(at..at + 1, special.iter().copied());
                let json = [br#"{"k":""#, &text[..], br#"","z":1}"#].concat();
                assert_eq!(
                    ours(&json).is_ok(),
                    serdes(&json).is_some(),
                    "{}",
                    String::from_utf8_lossy(&json)
                );
            }
        }
        let open = [br#"{"k":""#, &vec![b'b'; len][..]].concat();
        assert_eq!(ours(&open), Err(Rejected));
    }
}

#[test]
fn two_special_bytes_are_told_apart_wherever_they_fall_in_and_across_blocks() {
    // After an escape or a character the scan goes on from where it stopped, in the block or
    // past it: every pair of these, at every two places of a text around two blocks long.
    pairs_agree(36, 36);
}

/// Escapes good and bad, a control byte, a quote, characters, a byte that is not UTF-8.
const SPECIALS: [&[u8]; 10] = [
    b"\\n",
    b"\\u00e9",
    b"\\\"",
    b"\\\\",
    b"\x01",
    b"\"",
    "é".as_bytes(),
    "😀".as_bytes(),
    &[0xff],
    b"\\q",
];

/// Every pair of [`SPECIALS`], the second at most `apart` bytes after the first, at every place
/// of a string `len` bytes long, checked as `serde_json` checks it.
fn pairs_agree(len: usize, apart: usize) {
    for first in 0..len {
        for second in first..len.min(first + apart) {
            for a in SPECIALS {
                for b in SPECIALS {
                    let mut text = vec![b'a'; len];
                    text.splice(second..second + 1, b.iter().copied());
                    text.splice(first..first + 1, a.iter().copied());
                    let json = [br#"{"k":""#, &text[..], br#"","z":1}"#].concat();
                    assert_eq!(ours(&json).ok(), serdes(&json), "{json:?}");
                }
            }
        }
    }
}

#[test]
fn backslash_runs_are_paired_across_the_long_scans_chunks() {
    // A long string is read sixty-four bytes at a time from its start: a run of backslashes
    // ending anywhere around the first two chunk edges, then what it escapes (or not), then
    // what follows the string.
    let after: [&[u8]; 7] = [b"\"", b"n", b"u00e9", b"u00", b"q", "é".as_bytes(), b"\x01"];
    // What follows the string, in the same chunk: good escapes, a bad one, a stray backslash.
    let tails: [&[u8]; 4] = [
        br#"","z":"\\\""}"#,
        br#"","z":"\q"}"#,
        br#"",\"z":1}"#,
        br#""}"#,
    ];
    for run in 1..=5 {
        for end in 1..140 {
            for (next, tail) in after.iter().flat_map(|next| tails.map(|tail| (next, tail))) {
                let mut text = vec![b'a'; 150];
                text.splice(
                    end - run.min(end)..end,
                    std::iter::repeat_n(b'\\', run.min(end)),
                );
                text.splice(end..end, next.iter().copied());
                let json = [br#"{"k":""#, &text[..], tail].concat();
                assert_eq!(
                    ours(&json).ok(),
                    serdes(&json),
                    "{run} before {end}: {json:?}"
                );
            }
        }
    }
}

#[test]
fn special_bytes_close_together_are_read_across_the_long_scans_chunks() {
    // After the string's first sixteen bytes, from chunk to chunk.
    pairs_agree(140, 6);
}

#[test]
fn every_byte_is_told_apart_at_every_place_in_a_block() {
    for b in 0..=255u8 {
        for at in 0..24 {
            let mut text = [b'a'; 24];
            text[at] = b;
            let json = [br#"{"k":""#, &text[..], br#""}"#].concat();
            // A byte above 0x7f alone is not UTF-8: refused.
            assert_eq!(
                ours(&json).is_ok(),
                serdes(&json).is_some(),
                "{b:#x} at {at}"
            );
        }
    }
}

#[test]
fn characters_are_checked_wherever_they_fall_in_a_block() {
    let good: [&[u8]; 4] = [
        "é".as_bytes(),
        "→".as_bytes(),
        "😀".as_bytes(),
        "é→😀".as_bytes(),
    ];
    // Overlong, a surrogate, cut short, past U+10FFFF, a lone continuation byte.
    let bad: [&[u8]; 5] = [
        &[0xc0, 0x80],
        &[0xed, 0xa0, 0x80],
        &[0xe2, 0x86],
        &[0xf5, 0x80, 0x80, 0x80],
        &[0x80],
    ];
    for len in 0..40 {
        for at in 0..=len {
            for (chars, ok) in good
                .iter()
                .map(|c| (c, true))
                .chain(bad.iter().map(|c| (c, false)))
            {
                let mut text = vec![b'a'; len];
                text.splice(at..at, chars.iter().copied());
                for tail in [&br#""}"#[..], br#"","z":[1,"xyz"]}"#] {
                    let json = [br#"{"k":""#, &text[..], tail].concat();
                    assert_eq!(ours(&json).is_ok(), ok, "{json:?}");
                    assert_eq!(ours(&json).ok(), serdes(&json), "{json:?}");
                }
            }
        }
    }
    // Outside a string, no byte above 0x7f is JSON.
    assert_eq!(ours("{\"k\":1é}".as_bytes()), Err(Rejected));
    assert_eq!(ours("{é\"k\":1}".as_bytes()), Err(Rejected));
}

#[test]
fn every_character_of_up_to_three_bytes_and_the_edges_of_four_are_read_as_std_reads_them() {
    // What `from_utf8` says of the run of bytes above 0x7f, the run ended by a quote: read a
    // block at a time (more text follows) and byte by byte (the text ends there).
    let check = |bytes: &[u8]| {
        let run = bytes.iter().take_while(|b| **b >= 0x80).count();
        let want = std::str::from_utf8(&bytes[..run])
            .map(|_| run)
            .map_err(|_| Rejected);
        let text = [&bytes[..run], b"\"", &[b'a'; 16]].concat();
        assert_eq!(string_end(&text, 0), want, "{bytes:x?}");
        assert_eq!(string_end(&text[..=run], 0), want, "{bytes:x?}");
    };
    for a in 0x80..=0xffu8 {
        for b in 0..=0xffu8 {
            check(&[a, b]);
            for c in 0..=0xffu8 {
                check(&[a, b, c]);
            }
        }
    }
    let edges = [0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff];
    for a in 0xf0..=0xffu8 {
        for b in edges {
            for c in edges {
                for d in edges {
                    check(&[a, b, c, d]);
                    check(&[a, b, c, d, 0xc3, 0xa9]);
                }
            }
        }
    }
}

#[test]
fn nesting_is_refused_past_the_limit_and_left_to_the_full_parse() {
    let nested = |depth: usize| {
        format!(
            "{{\"a\":{}1{}}}",
            "[".repeat(depth - 1),
            "]".repeat(depth - 1)
        )
    };
    assert!(ours(nested(MAX_DEPTH).as_bytes()).is_ok());
    assert_eq!(ours(nested(MAX_DEPTH + 1).as_bytes()), Err(Rejected));
    // serde_json skips a deep value without a limit: the caller's fallback accepts it.
    assert!(serdes(nested(MAX_DEPTH + 1).as_bytes()).is_some());
}

#[test]
fn a_visitor_can_stop_the_check() {
    let mut seen = 0;
    let r = object_members(br#"{"a":1,"b":2}"#, |_, _| {
        seen += 1;
        Err(Rejected)
    });
    assert_eq!((r, seen), (Err(Rejected), 1));
}

/// Any JSON value, as text with white space here and there.
fn json_value() -> impl Strategy<Value = String> {
    let ws = prop::sample::select(vec!["", "", "", " ", "\n", "\t", "\r\n  "]);
    let string = prop::collection::vec(
        prop::sample::select(vec![
            "a",
            "é",
            "→",
            "\\n",
            "\\\"",
            "\\\\",
            "\\/",
            "\\u00e9",
            "\\ud83d\\ude00",
            "\\udc00",
            "\\t",
            " ",
            "}",
            "]",
            ",",
            ":",
            "{",
            "[",
            "0123456789abcdef",
        ]),
        0..40,
    )
    .prop_map(|parts| format!("\"{}\"", parts.concat()));
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        prop::sample::select(vec![
            "0",
            "-0",
            "12",
            "-3.25",
            "1e5",
            "2.5E-3",
            "-0.0e+0",
            "123456789012345678901234567890"
        ])
        .prop_map(str::to_owned),
        string.clone(),
    ];
    leaf.prop_recursive(6, 64, 6, move |inner| {
        let ws = ws.clone();
        prop_oneof![
            (prop::collection::vec((inner.clone(), ws.clone()), 0..6)).prop_map(|items| {
                let items: Vec<String> = items
                    .into_iter()
                    .map(|(v, w)| format!("{w}{v}{w}"))
                    .collect();
                format!("[{}]", items.join(","))
            }),
            (prop::collection::vec((string.clone(), inner, ws.clone()), 0..6)).prop_map(
                |members| {
                    let members: Vec<String> = members
                        .into_iter()
                        .map(|(k, v, w)| format!("{w}{k}{w}:{w}{v}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }
            ),
        ]
    })
}

fn json_object() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(
            (
                prop::sample::select(vec![
                    "model",
                    "stream",
                    "messages",
                    "m\\u006fdel",
                    "",
                    "tools",
                ]),
                json_value(),
            ),
            0..8,
        ),
        prop::sample::select(vec!["", " ", "\n"]),
    )
        .prop_map(|(members, w)| {
            let members: Vec<String> = members
                .into_iter()
                .map(|(k, v)| format!("{w}\"{k}\"{w}:{w}{v}{w}"))
                .collect();
            format!("{w}{{{}}}{w}", members.join(","))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Valid objects are accepted with serde_json's members; an edit of one (a byte changed,
    /// removed or added, the text cut — a character's UTF-8 broken, too) is accepted exactly
    /// when serde_json accepts it and it is UTF-8, with the same members.
    #[test]
    fn the_check_agrees_with_serde_json(
        json in json_object(),
        edit in 0usize..4,
        at in any::<prop::sample::Index>(),
        byte in prop::sample::select(vec![b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b' ', b'0', b'-', b'.', b'e', b'u', b'a', b'n', 0x01, 0x1f, 0x7f, 0x80, 0xa9, 0xc3, 0xe2, 0xff]),
    ) {
        let valid = json.as_bytes();
        prop_assert!(serdes(valid).is_some());
        prop_assert_eq!(ours(valid).ok(), serdes(valid));
        let mut edited = valid.to_vec();
        let i = at.index(edited.len() + 1);
        match edit {
            0 if i < edited.len() => edited[i] = byte,
            1 if i < edited.len() => { edited.remove(i); }
            2 => edited.insert(i, byte),
            _ => edited.truncate(i),
        }
        // (Nesting stays far below the limit here.)
        prop_assert_eq!(ours(&edited).ok(), serdes(&edited), "{}", String::from_utf8_lossy(&edited));
    }
}

use super::*;

/// Feeds `input` in pieces of `step` bytes; the total used, data and whether it ended.
fn run(input: &[u8], step: usize) -> Result<(usize, u64, bool), ChunkError> {
    let mut c = Chunked::default();
    let (mut used, mut data) = (0, 0);
    for piece in input.chunks(step) {
        let fed = c.feed(piece)?;
        used += fed.used;
        data += fed.data;
        if fed.done {
            return Ok((used, data, true));
        }
    }
    Ok((used, data, false))
}

#[test]
fn finds_the_end_and_counts_data_in_any_split() {
    let body = b"5 ; a = b ;c\r\nhello\r\n6;name=\"v\\\" ;\"\r\n world\r\n0\r\nX-Sum: 1\r\n\r\nGET /next";
    let end = body.len() - b"GET /next".len();
    for step in 1..=body.len() {
        assert_eq!(run(body, step), Ok((end, 11, true)), "step {step}");
    }
    assert_eq!(run(b"0\r\n\r\n", 100), Ok((5, 0, true)));
    assert_eq!(run(b"A\r\n0123456789\r\n", 100), Ok((15, 10, false)), "not ended yet");
    assert_eq!(run(b"ffffffffffffffff\r\n", 100), Ok((18, 0, false)), "16 digits fit");
}

#[test]
fn refuses_what_a_backend_could_read_differently() {
    let cases: &[(&[u8], ChunkError)] = &[
        (b"x\r\n", ChunkError::BadSize),
        (b"\r\n", ChunkError::BadSize),
        (b"-1\r\n", ChunkError::BadSize),
        (b"0x5\r\nhello\r\n", ChunkError::BadSize),
        (b"10000000000000000\r\n", ChunkError::SizeOverflow),
        (b"5\nhello\r\n", ChunkError::BadLineEnd),
        (b"5\r\nhello\n0\r\n\r\n", ChunkError::BadLineEnd),
        (b"5\r\nhelloXX", ChunkError::BadLineEnd),
        (b"5\rX", ChunkError::BadLineEnd),
        (b"5 x\r\n", ChunkError::BadExtension),
        (b"5 \r\n", ChunkError::BadExtension),
        (b"2;\r\naa\r\n", ChunkError::BadExtension),
        (b"2;a=\r\n", ChunkError::BadExtension),
        (b"2;a=\"x\r\n", ChunkError::BadExtension),
        (b"2;=v\r\n", ChunkError::BadExtension),
        (b"2;a b\r\n", ChunkError::BadExtension),
        (b"5;a\x00b\r\n", ChunkError::BadExtension),
        (b"5;a\nb\r\n", ChunkError::BadExtension),
        (b"0\r\n trailer: folded\r\n\r\n", ChunkError::BadTrailer),
        (b"0\r\nno-colon\r\n\r\n", ChunkError::BadTrailer),
        (b"0\r\nX: a\x01\r\n\r\n", ChunkError::BadTrailer),
        (b"0\r\n\r\r", ChunkError::BadLineEnd),
        (b"0\r\n\n", ChunkError::BadTrailer),
    ];
    for (input, want) in cases {
        assert_eq!(run(input, 100), Err(*want), "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn extensions_and_trailers_are_bounded() {
    let mut long_ext = b"1;".to_vec();
    long_ext.extend(std::iter::repeat_n(b'a', MAX_EXTENSION as usize));
    long_ext.extend(b"\r\n");
    assert_eq!(run(&long_ext, 100), Err(ChunkError::BadExtension));
    let mut spaces = b"1".to_vec();
    spaces.extend(std::iter::repeat_n(b' ', MAX_EXTENSION as usize + 1));
    assert_eq!(run(&spaces, 100), Err(ChunkError::BadExtension));
    let mut ok_ext = b"1;".to_vec();
    ok_ext.extend(std::iter::repeat_n(b'a', MAX_EXTENSION as usize - 2));
    ok_ext.extend(b"\r\nx\r\n0\r\n\r\n");
    assert!(run(&ok_ext, 100).unwrap().2);

    let mut trailers = b"0\r\n".to_vec();
    while trailers.len() < MAX_TRAILERS as usize + 100 {
        trailers.extend(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    trailers.extend(b"\r\n");
    assert_eq!(run(&trailers, 1000), Err(ChunkError::BadTrailer));
}

#[test]
fn a_finished_body_reads_nothing_more() {
    let mut c = Chunked::default();
    assert!(c.feed(b"0\r\n\r\n").unwrap().done);
    assert!(c.is_done());
    assert_eq!(c.feed(b"more"), Ok(Fed { used: 0, data: 0, done: true, trailers: 0..0 }));
}

#[test]
fn trailer_lines_are_marked_to_be_left_out() {
    let body = b"2\r\nok\r\n0\r\nX-Forwarded-For: 1.2.3.4\r\nHost: inner\r\n\r\n";
    let fed = Chunked::default().feed(body).unwrap();
    assert!(fed.done);
    let kept: Vec<u8> = [&body[..fed.trailers.start], &body[fed.trailers.end..fed.used]].concat();
    assert_eq!(kept, b"2\r\nok\r\n0\r\n\r\n");
    let none = Chunked::default().feed(b"0\r\n\r\n").unwrap();
    assert!(none.trailers.is_empty());
    // Split anywhere, each piece marks only its own trailer bytes.
    for split in 1..body.len() {
        let mut c = Chunked::default();
        let mut kept = Vec::new();
        let mut at = 0;
        for piece in [&body[..split], &body[split..]] {
            let fed = c.feed(piece).unwrap();
            kept.extend_from_slice(&piece[..fed.trailers.start]);
            kept.extend_from_slice(&piece[fed.trailers.end..fed.used]);
            at += fed.used;
        }
        assert_eq!((kept.as_slice(), at), (&b"2\r\nok\r\n0\r\n\r\n"[..], body.len()), "split {split}");
    }
}

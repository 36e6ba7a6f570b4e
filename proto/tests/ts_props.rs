//! `proto::ts` on damaged and re-split input: FFmpeg's TS vectors (tests/vectors/ts) with
//! packets dropped, sections corrupted, PMTs changed mid-stream, garbage and odd splits.
//! The damage must stay in the unit it hit and every surviving frame keep its exact
//! timing relative to the others (one shift for all tracks: A/V sync is kept).

use bytes::BytesMut;
use proptest::prelude::*;
use proto::media::{Frame, FrameFlags, TrackKind};
use proto::ts::psi::Pmt;
use proto::ts::{DemuxLimits, FrameReader, ReaderOptions, TsError, TsEvent};

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/vectors/ts/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("TS vector")
}

fn read(data: &[u8], splits: &[usize], options: ReaderOptions) -> Vec<TsEvent> {
    let mut r = FrameReader::new(options);
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < data.len() {
        let n = splits.get(i).copied().unwrap_or(data.len()).max(1);
        let end = (pos + n).min(data.len());
        r.handle_input(&data[pos..end]);
        out.extend(std::iter::from_fn(|| r.poll_event()));
        pos = end;
        i += 1;
    }
    r.finish();
    out.extend(std::iter::from_fn(|| r.poll_event()));
    out
}

fn frames(events: &[TsEvent]) -> Vec<Frame> {
    events
        .iter()
        .filter_map(|e| match e {
            TsEvent::Frame(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

fn errors(events: &[TsEvent]) -> Vec<TsError> {
    events
        .iter()
        .filter_map(|e| match e {
            TsEvent::Error(e) => Some(*e),
            _ => None,
        })
        .collect()
}

/// Every frame of `got` is a frame of `all`, in order per track, with one timestamp shift
/// for all of them. Returns how many frames were lost.
fn contained(all: &[Frame], got: &[Frame]) -> Result<usize, String> {
    let Some(first) = got.iter().find(|f| f.is_video()) else {
        return Ok(all.len() - got.len());
    };
    let orig = all
        .iter()
        .find(|f| f.is_video() && f.payload == first.payload)
        .ok_or("first video frame is not an original one")?;
    let shift = first.dts - orig.dts;
    let mut cursor = [0usize; 2];
    for f in got {
        let c = &mut cursor[usize::from(f.is_video())];
        let same = |o: &&Frame| {
            o.is_video() == f.is_video()
                && o.track == f.track
                && o.payload == f.payload
                && o.cts == f.cts
                && o.flags == f.flags
                && o.dts + shift == f.dts
        };
        let rest = &all[*c..];
        let i = rest
            .iter()
            .position(|o| same(&o))
            .ok_or_else(|| format!("frame {f:?} not found after {}", *c))?;
        *c += i + 1;
    }
    Ok(all.len() - got.len())
}

fn options() -> ReaderOptions {
    ReaderOptions::default()
}

#[test]
fn vectors_read_fully_and_cleanly() {
    for (name, min_video, min_audio) in [("h264_aac.ts", 5, 20), ("hevc_opus.ts", 5, 20)] {
        let events = read(&vector(name), &[], options());
        assert_eq!(errors(&events), vec![], "{name}");
        let f = frames(&events);
        assert!(
            f.iter().filter(|f| f.is_video()).count() >= min_video,
            "{name}"
        );
        assert!(
            f.iter().filter(|f| !f.is_video()).count() >= min_audio,
            "{name}"
        );
        // dts never steps back within a track.
        for video in [false, true] {
            let d: Vec<i64> = f
                .iter()
                .filter(|x| x.is_video() == video)
                .map(|x| x.dts)
                .collect();
            assert!(d.windows(2).all(|w| w[0] <= w[1]), "{name}: {d:?}");
        }
    }
}

/// Rewrites every PMT section of `data` with `edit` (sections fit one packet here).
fn edit_pmts(data: &mut [u8], pmt_pid: u16, mut edit: impl FnMut(usize, &mut Pmt)) {
    let mut n = 0;
    for p in data.chunks_exact_mut(188) {
        let pid = u16::from_be_bytes([p[1] & 0x1f, p[2]]);
        if pid != pmt_pid || p[1] & 0x40 == 0 {
            continue;
        }
        let start = 5 + usize::from(p[4]);
        let len = 3 + usize::from(u16::from_be_bytes([p[start + 1] & 0x0f, p[start + 2]]));
        let mut pmt = Pmt::parse(&p[start..start + len]).unwrap().unwrap();
        edit(n, &mut pmt);
        n += 1;
        let mut out = BytesMut::new();
        pmt.write(&mut out);
        p[start..start + out.len()].copy_from_slice(&out);
        p[start + out.len()..].fill(0xff);
    }
}

const PMT_PID: u16 = 0x1000;

#[test]
fn bad_crc_costs_only_the_section() {
    let clean = frames(&read(&vector("h264_aac.ts"), &[], options()));
    let mut data = vector("h264_aac.ts");
    // The first PMT's CRC is wrong: the program starts at the next PMT.
    let first_pmt = data
        .chunks_exact(188)
        .position(|p| u16::from_be_bytes([p[1] & 0x1f, p[2]]) == PMT_PID)
        .unwrap();
    data[first_pmt * 188 + 20] ^= 0x01;
    let events = read(&data, &[], options());
    assert!(errors(&events)
        .iter()
        .any(|e| matches!(e, TsError::Psi { pid: PMT_PID, .. })));
    let got = frames(&events);
    assert!(!got.is_empty());
    contained(&clean, &got).unwrap();
}

#[test]
fn pmt_change_mid_stream() {
    let data = vector("h264_aac.ts");
    let clean = frames(&read(&data, &[], options()));
    // The sixth PMT (between the two audio PES of this file) is a new version without
    // the audio stream.
    let mut changed = data.clone();
    edit_pmts(&mut changed, PMT_PID, |n, pmt| {
        if n >= 5 {
            pmt.version = 1;
            pmt.streams.retain(|s| s.stream_type != 0x0f);
        }
    });
    let events = read(&changed, &[], options());
    let got = frames(&events);
    contained(&clean, &got).unwrap();
    let audio = got.iter().filter(|f| !f.is_video()).count();
    let clean_audio = clean.iter().filter(|f| !f.is_video()).count();
    assert!(audio > 0 && audio < clean_audio, "{audio} of {clean_audio}");
    assert_eq!(
        got.iter().filter(|f| f.is_video()).count(),
        clean.iter().filter(|f| f.is_video()).count(),
        "video untouched by the PMT change"
    );

    let mut unsupported = data.clone();
    edit_pmts(&mut unsupported, PMT_PID, |_, pmt| {
        for s in &mut pmt.streams {
            if s.stream_type == 0x0f {
                s.stream_type = 0x90;
            }
        }
    });
    let events = read(&unsupported, &[], options());
    assert!(events.iter().any(|e| matches!(
        e,
        TsEvent::Unsupported {
            stream_type: 0x90,
            ..
        }
    )));
    assert!(frames(&events).iter().all(|f| f.is_video()));
}

#[test]
fn oversized_pes_is_dropped_and_the_stream_goes_on() {
    let data = vector("h264_aac.ts");
    let clean = frames(&read(&data, &[], options()));
    let small = ReaderOptions {
        limits: DemuxLimits {
            max_pes: 1000,
            ..DemuxLimits::default()
        },
        ..options()
    };
    let events = read(&data, &[], small);
    assert!(errors(&events)
        .iter()
        .any(|e| matches!(e, TsError::PesTooLarge { limit: 1000, .. })));
    // The keyframe (1443 bytes) and the first audio PES (1563) are dropped; the later
    // video frames have no parameter sets, the second audio PES (743) passes.
    assert!(errors(&events)
        .iter()
        .any(|e| matches!(e, TsError::NoParameterSets { .. })));
    let got = frames(&events);
    assert!(got.iter().all(|f| !f.is_video()) && !got.is_empty());
    contained(&clean, &got).unwrap();
}

#[test]
fn truncated_input_and_torn_last_packet() {
    let data = vector("hevc_opus.ts");
    let clean = frames(&read(&data, &[], options()));
    let cut = &data[..data.len() / 2 + 77];
    let got = frames(&read(cut, &[], options()));
    assert!(contained(&clean, &got).unwrap() > 0);
}

/// A live source that goes away mid-frame: `finish` would pass the unbounded video PES
/// on as it stands (a truncated frame, which decoders reject); `abandon` drops it, and
/// every frame it does emit is whole.
#[test]
fn abandoned_input_emits_no_truncated_frame() {
    let data = vector("h264_aac.ts");
    let clean = frames(&read(&data, &[], options()));
    let whole = |f: &Frame| clean.iter().any(|c| c == f);
    let mut cuts_mid_frame = 0;
    for cut in (188..data.len()).step_by(188) {
        let finished = frames(&read(&data[..cut], &[], options()));
        let mut r = FrameReader::new(options());
        r.handle_input(&data[..cut]);
        let dropped = r.abandon();
        let events: Vec<TsEvent> = std::iter::from_fn(|| r.poll_event()).collect();
        let abandoned = frames(&events);
        assert!(abandoned.iter().all(whole), "cut at {cut}: a partial frame");
        assert!(errors(&events).is_empty(), "cut at {cut}");
        if !finished.iter().all(whole) {
            cuts_mid_frame += 1;
            assert!(dropped >= 1, "cut at {cut}");
            assert_eq!(abandoned.len() + 1, finished.len(), "cut at {cut}");
        }
    }
    assert!(cuts_mid_frame > 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any split of the input gives exactly the events of the whole.
    #[test]
    fn any_split_same_events(splits in proptest::collection::vec(1usize..700, 1..200)) {
        let data = vector("h264_aac.ts");
        prop_assert_eq!(read(&data, &splits, options()), read(&data, &[], options()));
    }

    /// Garbage before the stream (without sync bytes) is skipped; the same frames follow.
    #[test]
    fn garbage_before_sync(garbage in proptest::collection::vec(any::<u8>().prop_filter("no sync", |b| *b != 0x47), 0..600)) {
        let data = vector("hevc_opus.ts");
        let clean = frames(&read(&data, &[], options()));
        let mut input = garbage.clone();
        input.extend_from_slice(&data);
        let got = frames(&read(&input, &[97], options()));
        prop_assert_eq!(got, clean);
    }

    /// Dropping packets (anywhere: PAT, PMT, audio, video) loses only the units they were
    /// part of; every other frame comes out unchanged with the same relative timing.
    #[test]
    fn dropped_packets_are_contained(drops in proptest::collection::btree_set(0usize..60, 1..4)) {
        for name in ["h264_aac.ts", "hevc_opus.ts"] {
            let data = vector(name);
            let clean = frames(&read(&data, &[], options()));
            let packets: Vec<&[u8]> = data.chunks_exact(188).collect();
            let dropped: Vec<usize> = drops.iter().map(|d| d % packets.len()).collect();
            let kept: Vec<u8> = packets
                .iter()
                .enumerate()
                .filter(|(i, _)| !dropped.contains(i))
                .flat_map(|(_, p)| p.iter().copied())
                .collect();
            let events = read(&kept, &[], options());
            let got = frames(&events);
            contained(&clean, &got).map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
        }
    }

    /// Bit flips never panic and never make the reader emit a frame that is not
    /// length-prefixed NAL units (video) or empty.
    #[test]
    fn bit_flips(flips in proptest::collection::vec((0usize..7520, 0u8..8), 1..20)) {
        let mut data = vector("h264_aac.ts");
        for (at, bit) in flips {
            let at = at % data.len();
            data[at] ^= 1 << bit;
        }
        for f in frames(&read(&data, &[333], options())) {
            prop_assert!(!f.payload.is_empty());
        }
    }
}

/// Muxes synthetic H.264 + AAC frames and reads them back.
fn mux_and_read(video: &[(u32, bool, Vec<u8>)], audio: &[Vec<u8>]) -> (Vec<TsEvent>, Vec<TsEvent>) {
    use proto::media::Codec;
    use proto::ts::{MuxOptions, Muxer};
    // The avcC of the h264_aac.ts vector.
    let avcc = read(&vector("h264_aac.ts"), &[], options())
        .into_iter()
        .find_map(|e| match e {
            TsEvent::Config {
                codec: Codec::H264,
                config,
                ..
            } => Some(config),
            _ => None,
        })
        .unwrap();
    let asc = bytes::Bytes::from_static(&[0x11, 0x88]);
    let mut expected = vec![TsEvent::Config {
        track: 0,
        codec: Codec::H264,
        config: avcc.clone(),
    }];
    // A track is announced with its first frame.
    if !audio.is_empty() {
        expected.push(TsEvent::Config {
            track: 0,
            codec: Codec::Aac,
            config: asc.clone(),
        });
    }
    let mut mux = Muxer::new(90_000, MuxOptions::default());
    mux.set_config(0, Codec::H264, &avcc).unwrap();
    mux.set_config(0, Codec::Aac, &asc).unwrap();
    let mut out = BytesMut::new();
    let mut dts = 0i64;
    let mut audio_dts = 0i64;
    let mut audio = audio.iter();
    for (step, key, body) in video {
        let mut nal = vec![if *key { 0x65 } else { 0x41 }];
        nal.extend_from_slice(body);
        let mut data = (nal.len() as u32).to_be_bytes().to_vec();
        data.extend_from_slice(&nal);
        let f = Frame {
            track: 0,
            kind: TrackKind::Video,
            dts,
            cts: 3600,
            flags: FrameFlags::new(*key, false),
            payload: data.into(),
        };
        mux.write_frame(&f, &mut out).unwrap();
        expected.push(TsEvent::Frame(f));
        // Audio frames (1920 ticks each) up to this video time.
        while audio_dts <= dts {
            let Some(a) = audio.next() else { break };
            let f = Frame {
                track: 0,
                kind: TrackKind::Audio,
                dts: audio_dts,
                cts: 0,
                flags: FrameFlags::KEYFRAME,
                payload: a.clone().into(),
            };
            mux.write_frame(&f, &mut out).unwrap();
            expected.push(TsEvent::Frame(f));
            audio_dts += 1920;
        }
        dts += i64::from(*step);
    }
    assert_eq!(out.len() % 188, 0);
    (expected, read(&out, &[], options()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Muxer then demuxer: the same configurations and frames, byte for byte and tick
    /// for tick, whatever the frame sizes (one byte to several packets) and spacing.
    #[test]
    fn mux_then_demux_is_identity(
        video in proptest::collection::vec((1u32..20_000, any::<bool>(), proptest::collection::vec(1u8..=255, 0..3000)), 1..12),
        audio in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..700), 0..20),
    ) {
        let mut video = video;
        video[0].1 = true; // start on a keyframe
        let (expected, got) = mux_and_read(&video, &audio);
        // Configurations come first, then the frames in decode order per track.
        let order = |e: &Vec<TsEvent>, v: bool| -> Vec<TsEvent> {
            e.iter().filter(|x| match x {
                TsEvent::Frame(f) => f.is_video() == v,
                TsEvent::Config { codec, .. } => (codec.kind() == proto::media::TrackKind::Video) == v,
                _ => true,
            }).cloned().collect()
        };
        prop_assert_eq!(order(&got, true), order(&expected, true));
        prop_assert_eq!(order(&got, false), order(&expected, false));
    }
}

/// An encoder restart: the same file twice in a row, so timestamps jump back by the
/// file's length. Output time keeps going forward in every track, the second copy starts
/// where the first ended, and it keeps the first copy's audio/video relation exactly.
#[test]
fn restart_with_earlier_timestamps_continues_forward() {
    let one = vector("h264_aac.ts");
    let first = frames(&read(&one, &[], options()));
    let mut r = FrameReader::new(options());
    r.handle_input(&one);
    let a = frames(&std::iter::from_fn(|| r.poll_event()).collect::<Vec<_>>());
    r.handle_input(&one);
    r.finish();
    let b = frames(&std::iter::from_fn(|| r.poll_event()).collect::<Vec<_>>());
    // The first copy's last (unbounded) video PES ends at the restart's continuity error.
    assert!(a.len() + b.len() + 2 >= 2 * first.len());
    let end_a = a.iter().map(|f| f.dts).max().unwrap();
    let show = |v: &[Frame]| v.iter().map(|f| (f.is_video(), f.dts)).collect::<Vec<_>>();
    assert!(
        b.iter().all(|f| f.dts >= end_a),
        "second copy overlaps the first: {:?} then {:?}",
        show(&a),
        show(&b)
    );
    for video in [false, true] {
        let d: Vec<i64> = a
            .iter()
            .chain(&b)
            .filter(|f| f.is_video() == video)
            .map(|f| f.dts)
            .collect();
        assert!(d.windows(2).all(|w| w[0] <= w[1]), "video {video}: {d:?}");
    }
    assert_eq!(contained(&first, &b).unwrap(), 0);
}

/// 204-byte packets (188 plus 16 bytes of Reed-Solomon parity, as DVB/ATSC links carry
/// them), in any split, give the same frames as the 188-byte original.
#[test]
fn packets_with_parity() {
    let data = vector("hevc_opus.ts");
    let clean = read(&data, &[], options());
    let mut rs = Vec::new();
    for p in data.chunks_exact(188) {
        rs.extend_from_slice(p);
        rs.extend_from_slice(&[0x47; 16]); // parity bytes that even look like sync
    }
    for split in [&[][..], &[1, 203, 205, 7, 4096]] {
        assert_eq!(read(&rs, split, options()), clean);
    }
}

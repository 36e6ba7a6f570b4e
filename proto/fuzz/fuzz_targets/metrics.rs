//! Counter report series: any text either parses to a series that prints back to text
//! parsing to the same series, or is refused; never a panic.
#![no_main]

use proto::metrics::Series;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(series) = Series::parse(text) {
        let again = Series::parse(&series.to_string()).expect("printed series parses");
        assert_eq!(again, series);
    }
});

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    l3map_fuzz::parse_one(&String::from_utf8_lossy(data));
});

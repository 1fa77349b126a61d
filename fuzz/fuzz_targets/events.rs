#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    l3map_fuzz::events_input(data);
});

//! Decoding arbitrary bytes as a manifest never panics, and whatever decodes re-encodes to the
//! same manifest.
#![no_main]

use autosave_tree::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = Manifest::decode(data) {
        let again = Manifest::decode(&manifest.encode()).expect("a decoded manifest re-encodes");
        assert_eq!(again, manifest);
    }
});

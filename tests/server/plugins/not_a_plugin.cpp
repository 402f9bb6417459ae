// Test fixture: an ordinary shared object that loads fine but exports no Weft entry point.
extern "C" __attribute__((visibility("default"))) int weft_test_not_a_plugin_answer() {
    return 42;
}

/* Test plugin: a shared object without the muster_plugin_descriptor symbol. */
__attribute__((visibility("default"))) int not_a_muster_plugin = 1;

/* placeholder so the module library exists before its issue lands */
int mf_store_module_placeholder;

/* placeholder so the module library exists before its issue lands */
int mf_engines_module_placeholder;

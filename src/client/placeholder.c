/* placeholder so the module library exists before its issue lands */
int mf_client_module_placeholder;

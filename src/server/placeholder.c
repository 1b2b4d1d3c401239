/* placeholder so the module library exists before its issue lands */
int mf_server_module_placeholder;

/* placeholder so the module library exists before its issue lands */
int mf_net_module_placeholder;

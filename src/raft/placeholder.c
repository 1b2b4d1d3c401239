/* placeholder so the module library exists before its issue lands */
int mf_raft_module_placeholder;

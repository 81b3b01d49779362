/*
 * pgvigil check-config: main.c already loaded and validated the file (errors exit 2 there);
 * this prints the effective configuration, every default filled in, passwords redacted.
 */
#include <stdio.h>

#include "pgvigil/cli.h"

int pv_cmd_check_config(PvCli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return pv_cli_fail(2, "check-config takes no arguments");
	PvBuf out = {0};
	pv_config_print(cli->cfg, &out);
	printf("# %s: configuration is valid\n%s", cli->config_path, out.data ? out.data : "");
	pv_buf_free(&out);
	return 0;
}

/*
 * `enrollbridge device-sim`: play an Apple device against a deployment.
 */
#ifndef EB_CLI_DEVICESIM_H
#define EB_CLI_DEVICESIM_H

/* argv[0] is "device-sim". Returns the process exit status. */
int eb_cli_device_sim(int argc, char **argv);

#endif

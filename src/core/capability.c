/*
 * capability.c
 *		Checking and dropping CAP_NET_ADMIN with the raw capget/capset
 *		system calls (no libcap needed).
 *
 * The postmaster may hold CAP_NET_ADMIN (given by systemd's
 * AmbientCapabilities) so the apply worker can reach the kernel.  The
 * postmaster keeps it only in its permitted set (dormant: not effective,
 * not inheritable, not ambient), so every process it forks starts
 * without it effective and no program any of them runs inherits it; the
 * apply worker raises it into its effective set again.  Every other
 * process drops it from every set as soon as PostgreSQL gives wgpeer a
 * hook there, after which neither it nor any program it runs can get it
 * back.
 */
#include "core/capability.h"

#include <errno.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Read this thread's capability sets. */
static int
cap_read(struct __user_cap_header_struct *hdr,
		 struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3])
{
	hdr->version = _LINUX_CAPABILITY_VERSION_3;
	hdr->pid = 0;
	return syscall(SYS_capget, hdr, data) < 0 ? -errno : 0;
}

/*
 * 1 when CAP_NET_ADMIN is in the effective set, 0 when not, -errno when
 * the sets cannot be read.
 */
int
wg_has_net_admin(void)
{
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	int			rc = cap_read(&hdr, data);

	if (rc < 0)
		return rc;
	return (data[CAP_TO_INDEX(CAP_NET_ADMIN)].effective &
			CAP_TO_MASK(CAP_NET_ADMIN)) != 0;
}

/* The sets lower_net_admin() takes CAP_NET_ADMIN out of. */
#define IN_EFFECTIVE	1
#define IN_PERMITTED	2
#define IN_INHERITABLE	4

/*
 * Take CAP_NET_ADMIN out of the ambient set and of the sets named by sets
 * (IN_*).  Lowering an ambient capability is always allowed (old kernels
 * have no ambient set).  Idempotent: 0 when done or when there was
 * nothing to take, -errno on failure.
 */
static int
lower_net_admin(int sets)
{
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	unsigned int i = CAP_TO_INDEX(CAP_NET_ADMIN);
	unsigned int mask = CAP_TO_MASK(CAP_NET_ADMIN);
	unsigned int held = 0;
	int			rc;

	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_NET_ADMIN, 0, 0) < 0 &&
		errno != EINVAL)
		return -errno;
	if ((rc = cap_read(&hdr, data)) < 0)
		return rc;
	if (sets & IN_EFFECTIVE)
		held |= data[i].effective;
	if (sets & IN_PERMITTED)
		held |= data[i].permitted;
	if (sets & IN_INHERITABLE)
		held |= data[i].inheritable;
	if ((held & mask) == 0)
		return 0;
	if (sets & IN_EFFECTIVE)
		data[i].effective &= ~mask;
	if (sets & IN_PERMITTED)
		data[i].permitted &= ~mask;
	if (sets & IN_INHERITABLE)
		data[i].inheritable &= ~mask;
	return syscall(SYS_capset, &hdr, data) < 0 ? -errno : 0;
}

/*
 * Keep CAP_NET_ADMIN only in the permitted set of this process: lower it
 * from the ambient, inheritable and effective sets.  What this process
 * forks inherits it as dormant too; what it execs gets nothing.
 * Idempotent.
 */
int
wg_dormant_net_admin(void)
{
	return lower_net_admin(IN_EFFECTIVE | IN_INHERITABLE);
}

/*
 * Make CAP_NET_ADMIN effective again from the permitted set.  1 when it is
 * effective now, 0 when this process is not permitted it (then nothing
 * changes), -errno on failure.
 */
int
wg_raise_net_admin(void)
{
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	unsigned int i = CAP_TO_INDEX(CAP_NET_ADMIN);
	unsigned int mask = CAP_TO_MASK(CAP_NET_ADMIN);
	int			rc;

	if ((rc = cap_read(&hdr, data)) < 0)
		return rc;
	if ((data[i].permitted & mask) == 0)
		return 0;
	if (data[i].effective & mask)
		return 1;
	data[i].effective |= mask;
	return syscall(SYS_capset, &hdr, data) < 0 ? -errno : 1;
}

/*
 * Remove CAP_NET_ADMIN from every set of this process.  Idempotent.
 */
int
wg_drop_net_admin(void)
{
	return lower_net_admin(IN_EFFECTIVE | IN_PERMITTED | IN_INHERITABLE);
}

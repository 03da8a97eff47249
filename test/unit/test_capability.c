/*
 * test_capability.c
 *		Unit test of capability.c: once dropped, CAP_NET_ADMIN is gone
 *		from every set and stays gone.
 */
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/capability.h"
#include "unit.h"

int
main(void)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	unsigned int i = CAP_TO_INDEX(CAP_NET_ADMIN);
	unsigned int mask = CAP_TO_MASK(CAP_NET_ADMIN);

	/* as root (how the test suite runs) the capability starts present */
	if (geteuid() == 0)
	{
		CHECK(wg_has_net_admin() == 1);
		/* dormant: only permitted, as the postmaster keeps it */
		CHECK(wg_dormant_net_admin() == 0);
		CHECK(wg_has_net_admin() == 0);
		CHECK(syscall(SYS_capget, &hdr, data) == 0);
		CHECK((data[i].permitted & mask) != 0);
		CHECK(((data[i].effective | data[i].inheritable) & mask) == 0);
		CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_ADMIN, 0, 0) == 0);
		CHECK(wg_dormant_net_admin() == 0);
		/* raised again, as the apply worker does */
		CHECK(wg_raise_net_admin() == 1);
		CHECK(wg_has_net_admin() == 1);
		CHECK(wg_raise_net_admin() == 1);
	}
	CHECK(wg_drop_net_admin() == 0);
	CHECK(wg_has_net_admin() == 0);
	CHECK(syscall(SYS_capget, &hdr, data) == 0);
	CHECK(((data[i].effective | data[i].permitted | data[i].inheritable) & mask) == 0);
	CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_ADMIN, 0, 0) == 0);
	/* dropping again is harmless */
	CHECK(wg_drop_net_admin() == 0);
	/* and raising it back is refused */
	data[i].effective |= mask;
	CHECK(syscall(SYS_capset, &hdr, data) < 0);
	CHECK(wg_has_net_admin() == 0);
	/* nor can the worker's way raise it once dropped */
	CHECK(wg_raise_net_admin() == 0);
	CHECK(wg_has_net_admin() == 0);
	return UNIT_DONE("test_capability");
}

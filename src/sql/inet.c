/*
 * inet.c
 *		Address arithmetic: IPv4 addresses as integers and back, for the
 *		allocator, and a peer's IPv6 address from its IPv4 one.
 */
#include "sql/sql.h"

/*
 * The value of an IPv4 inet as a host-order integer.
 */
uint32
wgpeer_inet4_value(const inet *ip)
{
	const unsigned char *a = ip_addr(ip);

	return ((uint32) a[0] << 24) | ((uint32) a[1] << 16) |
		((uint32) a[2] << 8) | (uint32) a[3];
}

/*
 * A copy of an inet datum in the current memory context, to keep a value
 * read through SPI beyond SPI_finish() or the next statement.
 */
Datum
wgpeer_inet_copy(Datum d)
{
	return PointerGetDatum(PG_DETOAST_DATUM_COPY(d));
}

/*
 * An IPv4 inet datum from a host-order integer and a prefix length.
 */
Datum
wgpeer_inet4_datum(uint32 addr, int bits)
{
	inet	   *ip = palloc0(sizeof(inet));
	unsigned char *a = ip_addr(ip);

	ip_family(ip) = PGSQL_AF_INET;
	ip_bits(ip) = bits;
	a[0] = addr >> 24;
	a[1] = addr >> 16;
	a[2] = addr >> 8;
	a[3] = addr;
	SET_INET_VARSIZE(ip);
	return InetPGetDatum(ip);
}

/*
 * The IPv6 address (/128) of the peer whose IPv4 address is "address": the
 * interface's IPv6 network plus the peer's offset in the IPv4 network.
 * wg_add_interface() checks that the IPv6 prefix has at least as many host
 * bits as the IPv4 one, so the sum never leaves the IPv6 network.
 */
Datum
wgpeer_derive6(Datum address, Datum iface_address, Datum iface_address6)
{
	const inet *v4 = DatumGetInetPP(iface_address);
	const inet *v6 = DatumGetInetPP(iface_address6);
	uint32		mask4 = ip_bits(v4) == 0 ? 0 : ~(uint32) 0 << (32 - ip_bits(v4));
	uint32		offset = wgpeer_inet4_value(DatumGetInetPP(address)) & ~mask4;
	inet	   *out = palloc0(sizeof(inet));
	unsigned char *a = ip_addr(out);
	int			bits = ip_bits(v6);
	int			i;
	uint32		carry;

	ip_family(out) = PGSQL_AF_INET6;
	ip_bits(out) = 128;
	memcpy(a, ip_addr(v6), 16);
	/* clear the host part of the server's address: the network */
	for (i = 0; i < 16; i++)
	{
		int			keep = bits - i * 8;

		if (keep <= 0)
			a[i] = 0;
		else if (keep < 8)
			a[i] &= (unsigned char) (0xff << (8 - keep));
	}
	/* add the offset, carrying through the low bytes */
	carry = offset;
	for (i = 15; i >= 0 && carry; i--)
	{
		uint32		sum = a[i] + (carry & 0xff);

		a[i] = sum & 0xff;
		carry = (carry >> 8) + (sum >> 8);
	}
	SET_INET_VARSIZE(out);
	return InetPGetDatum(out);
}

#!/usr/bin/perl
# check_layers.pl SRC [POSTGRES]
#
# The layering rule of wgpeer's source tree, checked from the sources'
# includes and the built objects' symbols (make check-layers runs it after
# a build).  Each folder of SRC is a layer; a file may depend on its own
# layer and on those below it:
#
#   core     pure C, no PostgreSQL: nothing else
#   device   pure C: core
#   common   PostgreSQL plumbing: core
#   sql      what client backends run: common, core
#   worker   the apply worker: common, device, core
#   webhook  the webhook worker: common, core
#   module.c (SRC itself) _PG_init: anything
#
# The SQL side never reaches device or worker code: the processes that run
# it have dropped CAP_NET_ADMIN, so that boundary is a build boundary.
# Three checks, each failing with a sentence naming the file and what it
# used:
#   1. includes: a quoted include that names a file of SRC must be of an
#      allowed layer; a pure layer includes only pure layers' headers
#      (no postgres.h or other PostgreSQL header);
#   2. symbols: every undefined symbol of an object that another object of
#      SRC defines must come from an allowed layer; an object of a pure
#      layer may not use a symbol the postgres executable exports (given
#      as POSTGRES, default $(pg_config --bindir)/postgres);
#   3. cycles: no two objects of SRC use each other, directly or through
#      others;
#   4. the queue's writers: only the files named in @QUEUE_WRITERS write
#      to wgpeer.queue (INSERT, UPDATE or DELETE): the desired changes of
#      the interfaces have a known, short list of authors.
# Exits 0 when the tree keeps the rule, 1 when it does not.
use strict;
use warnings;
use File::Find;
use File::Basename;

my $src = shift // 'src';
my $postgres = shift;
$src =~ s{/+$}{};

my %allowed = (
	core   => [qw(core)],
	device => [qw(device core)],
	common => [qw(common core)],
	sql    => [qw(sql common core)],
	worker => [qw(worker common device core)],
	webhook => [qw(webhook common core)],
	module => [qw(module core device common sql worker webhook)],
);
my %pure = (core => 1, device => 1);
my @problems;

# The layer of a path below SRC: its first folder, or "module" at the top.
sub layer_of
{
	my ($path) = @_;
	(my $rel = $path) =~ s{^\Q$src\E/}{};
	return $rel =~ m{^([^/]+)/} ? $1 : 'module';
}

sub may_use
{
	my ($from, $to) = @_;
	return grep { $_ eq $to } @{ $allowed{$from} // [] };
}

my (@sources, @objects);
find(
	{
		no_chdir => 1,
		wanted   => sub {
			push @sources, $_ if /\.[ch]$/;
			push @objects, $_ if /\.o$/;
		}
	},
	$src);
@sources = sort @sources;
@objects = sort @objects;

for my $layer (map { layer_of($_) } @sources, @objects)
{
	push @problems, "$src/$layer is not a known layer (known: "
	  . join(', ', sort grep { $_ ne 'module' } keys %allowed) . ")"
	  unless exists $allowed{$layer};
}

# 1. includes
for my $file (@sources)
{
	my $layer = layer_of($file);
	next unless exists $allowed{$layer};
	open(my $fh, '<', $file) or die "cannot read $file: $!\n";
	while (my $line = <$fh>)
	{
		next unless $line =~ /^\s*#\s*include\s*"([^"]+)"/;
		my $inc = $1;
		my $target;
		for my $candidate (dirname($file) . "/$inc", "$src/$inc")
		{
			if (-f $candidate)
			{
				$target = $candidate;
				last;
			}
		}
		if (!defined $target)
		{
			push @problems,
			  "$file:$.: includes \"$inc\", a PostgreSQL header, but $layer is pure C"
			  if $pure{$layer};
			next;
		}
		my $to = layer_of($target);
		push @problems,
		  "$file:$.: includes \"$inc\" of layer $to, but $layer may only depend on "
		  . join(', ', @{ $allowed{$layer} })
		  unless may_use($layer, $to);
	}
	close($fh);
}

# 2. symbols
my (%defined_in, %undefined);
for my $obj (@objects)
{
	for (`nm --defined-only -g "$obj"`)
	{
		$defined_in{$2} //= $obj if /^\S*\s+([A-Z])\s+(\S+)$/ && $1 ne 'U';
	}
	$undefined{$obj} = [ map { /^\s*U\s+(\S+)$/ ? $1 : () } `nm -u "$obj"` ];
}

my %postgres_symbol;
if (grep { $pure{ layer_of($_) } } @objects)
{
	if (!defined $postgres)
	{
		my $bindir = `pg_config --bindir`;
		chomp $bindir;
		$postgres = "$bindir/postgres";
	}
	die "check_layers: cannot read $postgres\n" unless -r $postgres;
	for (`nm -D --defined-only "$postgres"`)
	{
		$postgres_symbol{$1} = 1 if /^\S+\s+[A-Z]\s+(\S+)$/;
	}
}

my %edges;
for my $obj (@objects)
{
	my $layer = layer_of($obj);
	next unless exists $allowed{$layer};
	for my $sym (@{ $undefined{$obj} })
	{
		my $def = $defined_in{$sym};
		if (defined $def)
		{
			next if $def eq $obj;
			$edges{$obj}{$def} = $sym;
			my $to = layer_of($def);
			push @problems,
			  "$obj: uses $sym from $def, but $layer may only depend on "
			  . join(', ', @{ $allowed{$layer} })
			  unless may_use($layer, $to);
		}
		elsif ($pure{$layer} && $postgres_symbol{$sym})
		{
			push @problems,
			  "$obj: uses $sym, a PostgreSQL symbol, but $layer is pure C";
		}
	}
}

# 3. cycles between objects (Tarjan's strongly connected components)
my ($index, @stack, %on_stack, %idx, %low) = (0);
my @components;

sub visit
{
	my ($v) = @_;
	$idx{$v} = $low{$v} = $index++;
	push @stack, $v;
	$on_stack{$v} = 1;
	for my $w (sort keys %{ $edges{$v} // {} })
	{
		if (!exists $idx{$w})
		{
			visit($w);
			$low{$v} = $low{$w} if $low{$w} < $low{$v};
		}
		elsif ($on_stack{$w})
		{
			$low{$v} = $idx{$w} if $idx{$w} < $low{$v};
		}
	}
	if ($low{$v} == $idx{$v})
	{
		my @component;
		my $w;
		do
		{
			$w = pop @stack;
			delete $on_stack{$w};
			push @component, $w;
		} while ($w ne $v);
		push @components, [ sort @component ] if @component > 1;
	}
}

visit($_) for grep { !exists $idx{$_} } @objects;
for my $component (@components)
{
	my %in = map { $_ => 1 } @$component;
	my @uses;
	for my $from (@$component)
	{
		for my $to (sort keys %{ $edges{$from} })
		{
			push @uses, basename($from) . " uses $edges{$from}{$to} of " . basename($to)
			  if $in{$to};
		}
	}
	push @problems, "cycle between " . join(', ', @$component) . ": " . join('; ', @uses);
}

# 4. the queue's writers
my @QUEUE_WRITERS = (
	'sql/queue.c',		# the row trigger peer_queue: every peer change
	'worker/expiry.c',	# a node's own expiry (no peer change replicates)
	'worker/apply.c',	# consumes: deletes applied rows, quarantines
);
my %queue_writer = map { ("$src/$_" => 1) } @QUEUE_WRITERS;
for my $file (@sources)
{
	next if $queue_writer{$file};
	open(my $fh, '<', $file) or die "cannot read $file: $!\n";
	my $text = do { local $/; <$fh> };
	close($fh);
	$text =~ s/"\s*\n\s*"//g;	# C string literals split across lines
	while ($text =~ /\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+wgpeer\.queue\b/gi)
	{
		push @problems,
		  "$file: writes wgpeer.queue ($1), but only "
		  . join(', ', @QUEUE_WRITERS) . " may (see \@QUEUE_WRITERS)";
	}
}

if (@problems)
{
	print STDERR "check-layers: $_\n" for @problems;
	printf STDERR "check-layers: %d problem%s\n", scalar @problems,
	  @problems == 1 ? '' : 's';
	exit 1;
}
printf "check-layers: %d sources and %d objects keep the layering rule, no cycles\n",
  scalar @sources, scalar @objects;
exit 0;

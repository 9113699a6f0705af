package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"strings"
	"time"

	"github.com/clover-kv/clover/client"
)

// The examples talk to the cluster TestMain starts; endpoints holds its
// nodes' gRPC addresses (in a real program, e.g. "10.0.0.1:7400").

func ExampleNew() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{Insecure: true, Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	st, err := c.ClusterStatus(ctx)
	if err != nil {
		log.Fatal(err)
	}
	slices.SortFunc(st.Nodes, func(a, b client.NodeStatus) int { return strings.Compare(a.ID, b.ID) })
	for _, n := range st.Nodes {
		fmt.Println(n.ID, n.Locality.Country, n.Jurisdictions)
	}
	// Output:
	// ie-1 IE [EEA EU]
	// us-1 US []
}

func ExampleClient_Put() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{Insecure: true, Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	v1, err := c.Put(ctx, "users", []byte("user/42"), []byte(`{"name":"Aoife"}`))
	if err != nil {
		log.Fatal(err)
	}
	v2, err := c.Put(ctx, "users", []byte("user/42"), []byte(`{"name":"Aoife","city":"Cork"}`))
	if err != nil {
		log.Fatal(err)
	}
	// A key's version is the Raft index of its last write: it only grows.
	fmt.Println("second write has a higher version:", v2 > v1)
	// Output:
	// second write has a higher version: true
}

func ExampleClient_Get() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{Insecure: true, Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if _, err := c.Put(ctx, "users", []byte("user/7"), []byte(`{"name":"Niamh"}`)); err != nil {
		log.Fatal(err)
	}
	kv, err := c.Get(ctx, "users", []byte("user/7"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", kv.Value)

	_, err = c.Get(ctx, "users", []byte("user/never-written"))
	fmt.Println("missing key:", errors.Is(err, client.ErrNotFound))
	// Output:
	// {"name":"Niamh"}
	// missing key: true
}

// Two writers read the same version; the first compare-and-swap wins and the
// second learns the current version from the error.
func ExampleClient_CompareAndSwap() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{Insecure: true, Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	key := []byte("account/9")
	read, err := c.Put(ctx, "users", key, []byte("plan=free"))
	if err != nil {
		log.Fatal(err)
	}

	won, err := c.CompareAndSwap(ctx, "users", key, read, []byte("plan=pro"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("first writer: ok")

	_, err = c.CompareAndSwap(ctx, "users", key, read, []byte("plan=team"))
	var ce *client.Error
	if errors.Is(err, client.ErrVersionMismatch) && errors.As(err, &ce) {
		fmt.Println("second writer: version mismatch")
		fmt.Println("current version is the first writer's:", ce.CurrentVersion == won)
	}

	kv, err := c.Get(ctx, "users", key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", kv.Value)
	// Output:
	// first writer: ok
	// second writer: version mismatch
	// current version is the first writer's: true
	// plan=pro
}

// Scan returns keys in order across all shards, one page at a time.
func ExampleClient_Scan() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{Insecure: true, Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for _, k := range []string{"order/5", "order/3", "order/1", "order/4", "order/2"} {
		if _, err := c.Put(ctx, "users", []byte(k), []byte("item")); err != nil {
			log.Fatal(err)
		}
	}
	var token []byte
	for page := 1; ; page++ {
		kvs, next, err := c.Scan(ctx, "users", client.WithPrefix([]byte("order/")), client.WithLimit(2), client.WithPageToken(token))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print("page ", page, ":")
		for _, kv := range kvs {
			fmt.Print(" ", string(kv.Key))
		}
		fmt.Println()
		if next == nil {
			break
		}
		token = next
	}
	// Output:
	// page 1: order/1 order/2
	// page 2: order/3 order/4
	// page 3: order/5
}

// ScanAll hides the pages. Keys sort by their bytes, so "Órla" (UTF-8 0xC3
// 0x93 ...) comes after "Síofra".
func ExampleClient_ScanAll() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{Insecure: true, Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for _, name := range []string{"Síofra", "Cian", "Órla"} {
		if _, err := c.Put(ctx, "users", []byte("team/"+name), []byte("member")); err != nil {
			log.Fatal(err)
		}
	}
	for kv, err := range c.ScanAll(ctx, "users", client.WithPrefix([]byte("team/")), client.WithLimit(1)) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s=%s\n", kv.Key, kv.Value)
	}
	// Output:
	// team/Cian=member
	// team/Síofra=member
	// team/Órla=member
}

// A follower read may be served by any permitted replica whose data is at
// most the given age: cheaper than a linearizable read.
func ExampleFollower() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{Insecure: true, Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if _, err := c.Put(ctx, "users", []byte("user/8"), []byte(`{"name":"Eoin"}`)); err != nil {
		log.Fatal(err)
	}
	kv, err := c.Get(ctx, "users", []byte("user/8"), client.Follower(time.Second))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", kv.Value)
	// Output:
	// {"name":"Eoin"}
}

// A keyspace's replicas stay inside its policy; a policy that cannot be met
// is refused rather than placed elsewhere.
func ExampleClient_CreateKeyspace() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{Insecure: true, Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ks, err := c.CreateKeyspace(ctx, "sessions", 2, client.Policy{
		AllowJurisdictions: []string{"EEA"}, Replicas: 1, Class: "personal",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.DropKeyspace(ctx, "sessions")
	fmt.Println(ks.Name, ks.Policy.AllowJurisdictions, ks.Policy.Class)
	for i, sh := range ks.Shards {
		fmt.Println("shard", i, "on", sh.Replicas)
	}

	// The cluster has one node in the EEA: two replicas cannot be placed.
	_, err = c.CreateKeyspace(ctx, "sessions-ha", 2, client.Policy{
		AllowJurisdictions: []string{"EEA"}, Replicas: 2, Class: "personal",
	})
	fmt.Println("two EEA replicas:", errors.Is(err, client.ErrCannotPlace))
	// Output:
	// sessions [EEA] personal
	// shard 0 on [ie-1]
	// shard 1 on [ie-1]
	// two EEA replicas: true
}

// A node outside a keyspace's jurisdictions refuses it and names the nodes
// that may serve it.
func Example_residency() {
	ctx := context.Background()
	// Direct sends requests to the US node as they are, without routing.
	us, err := client.New(ctx, client.Config{Insecure: true, Endpoints: []string{usEndpoint}, Direct: true})
	if err != nil {
		log.Fatal(err)
	}
	defer us.Close()

	_, err = us.Put(ctx, "users", []byte("user/51"), []byte(`{"name":"Saoirse"}`))
	var ce *client.Error
	if !errors.Is(err, client.ErrResidency) || !errors.As(err, &ce) {
		log.Fatalf("want a residency refusal, got %v", err)
	}
	fmt.Println("refused; permitted endpoints:", len(ce.PermittedEndpoints))

	// Ask a permitted node instead.
	eu, err := client.New(ctx, client.Config{Insecure: true, Endpoints: ce.PermittedEndpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer eu.Close()
	if _, err := eu.Put(ctx, "users", []byte("user/51"), []byte(`{"name":"Saoirse"}`)); err != nil {
		log.Fatal(err)
	}
	kv, err := eu.Get(ctx, "users", []byte("user/51"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", kv.Value)
	// Output:
	// refused; permitted endpoints: 1
	// {"name":"Saoirse"}
}

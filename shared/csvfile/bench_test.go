package csvfile

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/unifiedprofiles/up/shared/message"
)

// benchFile is a full-size upload: MaxRows data rows of 8 columns, about 1 MB.
func benchFile() []byte {
	var b bytes.Buffer
	b.WriteString("user_id,email,phone,anonymous_id,First Name,Last Name,City,Plan\r\n")
	cities := []string{"São Paulo", "Zürich", "Kraków", "Reykjavík", "Austin"}
	for i := range MaxRows {
		fmt.Fprintf(&b, "user-%d,person%d@example.com,+1415555%04d,anon-%08x,Zoë,Núñez-%d,%s,gold\r\n",
			i, i, i, i*7919, i, cities[i%len(cities)])
	}
	return b.Bytes()
}

func BenchmarkValidateMessages(b *testing.B) {
	data := benchFile()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Validate(bytes.NewReader(data), "people.csv", testCols)
		if err != nil || !rep.OK() || rep.Rows != MaxRows {
			b.Fatalf("%v %+v", err, rep.Problems)
		}
		n := 0
		if err := Messages(bytes.NewReader(data), "upl", at, 0, func(int, message.Message) error { n++; return nil }); err != nil || n != MaxRows {
			b.Fatal(err, n)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	data := benchFile()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if rep, err := Validate(bytes.NewReader(data), "people.csv", testCols); err != nil || !rep.OK() {
			b.Fatal(err)
		}
	}
}

func BenchmarkMessages(b *testing.B) {
	data := benchFile()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Messages(bytes.NewReader(data), "upl", at, 0, func(int, message.Message) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
